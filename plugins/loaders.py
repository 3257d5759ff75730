"""Generic data readers: CSV/JSONL text, image folders, MedMNIST-style npz, DICOM, tabular CSV."""

from __future__ import annotations

from bigmodel.core import LoaderSpec, hookimpl

_IMPL = "bigmodel.core.loaders"


@hookimpl
def register_loaders(register):
    register(LoaderSpec(name="text_table", task="text", load=f"{_IMPL}:load_text_table", suffixes=[".csv", ".tsv", ".jsonl", ".json"],
                        description="CSV/TSV or JSONL/JSON with a text column and a label column (names configurable)"))
    register(LoaderSpec(name="image_folder", task="image", load=f"{_IMPL}:load_image_folder", suffixes=[""],
                        description="a directory with one sub-directory of PNG/JPEG/DICOM images per class"))
    register(LoaderSpec(name="npz_images", task="image", load=f"{_IMPL}:load_npz_images", suffixes=[".npz"],
                        description="MedMNIST-style npz: {train,val,test}_{images,labels}"))
    register(LoaderSpec(name="dicom_folder", task="image", load=f"{_IMPL}:load_dicom_folder", suffixes=[".dcm"],
                        description="DICOM files (pydicom; rescale, window, MONOCHROME1, frames) in one sub-directory per class"))
    register(LoaderSpec(name="tabular_csv", task="tabular", load=f"{_IMPL}:load_tabular_csv", suffixes=[".csv", ".tsv", ".data"],
                        description="CSV with a target column and declared numeric/categorical columns"))
