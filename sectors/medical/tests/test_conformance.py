"""bigmodel's conformance suite over everything this sector registers.

The only offline BreastMNIST is a re-save whose checksum differs from the publisher's (fetch refuses it,
as it must), so the suite reads it as local data with the dataset's own loader.
"""

from bigmodel.testing import conformance_tests, find_shared_data

_shared = find_shared_data()
conformance_tests(globals(), plugin="medical", local_data={
    "medical/breastmnist": _shared / "medmnist" / "breastmnist.npz" if _shared else None,
})
