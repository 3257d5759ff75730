"""Hook implementations of the customer-service sector (loaded on every CLI start: keep it light)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bigmodel.core import (
    DataFile,
    DatasetSpec,
    LabelMap,
    MetricSpec,
    Recipe,
    SectorSpec,
    SectorTask,
    ValueFactorSpec,
    hookimpl,
)

from .intents import BANKING77_INTENTS

__all__ = ["BIGMODEL_REQUIRES", "SECTOR", "IntentRecipe", "PRESETS"]

BIGMODEL_REQUIRES = ">=0.1,<0.2"
SECTOR = "customer_service"
_PKG = "bigmodel_customer_service"
_BANKING77_RAW = (
    "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/"
    "57ec275d8078af65b7731c2a98be812d844a6d6b/banking_data"
)


class IntentRecipe(Recipe):
    """Fine-tuning recipe for intent detection, with the hand-off target."""

    max_length: int = Field(default=64, ge=8, le=512, description="tokens kept per message (longer ones are truncated)")
    freeze_embeddings: bool = Field(default=False, description="keep the token embeddings fixed (faster steps on CPU)")
    pooling: Literal["cls", "mean"] = Field(
        default="mean", description="sentence vector: mean of token vectors (how all-MiniLM-L6-v2 was trained) or the first token",
    )
    target_precision: float = Field(
        default=0.95, gt=0, le=1,
        description="precision required on automatically answered messages; the hand-off threshold is chosen on validation to reach it",
    )


PRESETS: dict[str, dict[str, object]] = {
    # measured (docs/benchmarks.md): 4 min 51 s wall, 360 CPU-s on 2 shared cores, test accuracy 0.817
    "demo": {
        "train_subset": 3080, "epochs": 1.5, "learning_rate": 3e-4, "batch_size": 32, "max_length": 32,
        "warmup_ratio": 0.06, "eval_batch_size": 256, "weight_decay": 0.01, "freeze_embeddings": True,
    },
    # the benchmark recipe (benchmarks/customer_service.py): all of BANKING77's training set
    # measured (docs/benchmarks.md): test accuracy 0.9305 on BANKING77, 4 epochs on all 9,002 messages;
    # the best validation macro-F1 checkpoint is kept (load_best_model_at_end)
    "full": {
        "epochs": 4, "learning_rate": 1.5e-4, "batch_size": 32, "max_length": 48, "warmup_ratio": 0.1,
        "weight_decay": 0.01, "label_smoothing": 0.05, "early_stopping_patience": 0, "eval_batch_size": 256,
        "freeze_embeddings": True,
    },
}


@hookimpl
def register_sectors(register):
    register(SectorSpec(
        name=SECTOR,
        title="Customer service: intent detection with human hand-off",
        description=(
            "Routes incoming support messages to one of the 77 BANKING77 intents and hands a message to a human "
            "when the model's confidence is below a threshold chosen on validation for a target precision."
        ),
        tasks=[SectorTask(
            name="intent",
            kind="text",
            description="intent of a customer message (77 banking intents); predictions carry handoff: true/false",
            label_map=LabelMap.from_names(list(BANKING77_INTENTS)),
            datasets=["banking77"],
            model="hf_text_classifier",
            recipe=IntentRecipe,
            presets=PRESETS,
            metrics=["accuracy", "macro_f1", "ece", "top3_accuracy", "per_intent_f1", "coverage_at_precision"],
            decision=f"{_PKG}.decision:handoff",
        )],
    ))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="banking77",
        sector=SECTOR,
        task="text",
        licence="CC-BY-4.0",
        description="BANKING77 (PolyAI, Casanueva et al. 2020): 13,083 online-banking customer messages, 77 intents; "
                    "train 10,003 / test 3,080 as published",
        homepage="https://github.com/PolyAI-LDN/task-specific-datasets",
        files=[
            DataFile(filename="train.csv", url=f"{_BANKING77_RAW}/train.csv",
                     hash="sha256:b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b"),
            DataFile(filename="test.csv", url=f"{_BANKING77_RAW}/test.csv",
                     hash="sha256:d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d"),
        ],
        loader="text_table",
        loader_options={"text_column": "text", "label_column": "category"},
        mirror_subdir="banking77",
    ))


@hookimpl
def register_metrics(register):
    register(MetricSpec(name="top3_accuracy", compute=f"{_PKG}.metrics:top3_accuracy", tasks=["text"],
                        description="share of messages whose true intent is among the 3 most probable"))
    register(MetricSpec(name="per_intent_f1", compute=f"{_PKG}.metrics:per_intent_f1", tasks=["text"],
                        description="F1 of each intent; the 10 worst listed"))
    register(MetricSpec(name="coverage_at_precision", compute=f"{_PKG}.metrics:coverage_at_precision", tasks=["text"],
                        description="coverage, accuracy on covered messages and hand-off rate at the validation-chosen threshold"))


@hookimpl
def register_value_factors(register):
    value = f"{_PKG}.value"
    register(ValueFactorSpec(
        sector=SECTOR, factor="T", name="gain_over_tfidf", weight=1.0, measure=f"{value}:gain_over_tfidf",
        description="test macro-F1 gain over a TF-IDF + logistic-regression baseline trained on the same split; "
                    "+0.10 or more -> 1, no gain -> 0",
    ))
    register(ValueFactorSpec(
        sector=SECTOR, factor="K", name="intents_mastered", weight=1.0, measure=f"{value}:intents_mastered",
        description="share of intents with test F1 >= 0.9",
    ))
    register(ValueFactorSpec(
        sector=SECTOR, factor="U", name="calibration", weight=0.5, measure=f"{value}:calibration",
        description="1 - test ECE / 0.15 (clipped): confidences users can trust",
    ))
    register(ValueFactorSpec(
        sector=SECTOR, factor="U", name="coverage_at_target", weight=0.5, measure=f"{value}:coverage_at_target",
        description="share of test messages answered automatically at the validation-chosen threshold",
    ))
    register(ValueFactorSpec(
        sector=SECTOR, factor="R", name="cost_per_1k", weight=1.0, measure=f"{value}:cost_per_1k",
        description="inference seconds per 1000 messages on the measured hardware, s -> 10 / (10 + s)",
    ))
