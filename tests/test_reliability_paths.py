"""Nothing from a dataset's files runs code or escapes the run directory: restricted unpickling, plain item ids."""

from __future__ import annotations

import os
import pickle

import pytest
from test_refcoco import refer  # noqa: F401 - the fixture: a refer layout with three val refs

from peekaboo.data.base import check_item_ids
from peekaboo.data.refcoco import RefCOCODataset
from peekaboo.errors import DataError
from peekaboo.evaluation.results import item_dir


class Payload:
    """Unpickling this runs ``os.system``: what a malicious refs file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_refs_pickle_that_would_run_code_is_refused_unless_trusted(refer, tmp_path):  # noqa: F811
    refs_file = refer["root"] / "refcoco" / "refs(unc).p"
    marker = tmp_path / "pwned"
    refs_file.write_bytes(pickle.dumps([Payload(marker)], protocol=2))
    with pytest.raises(DataError) as err:
        RefCOCODataset(str(refer["root"]), images=str(refer["images"]))
    assert not marker.exists()
    assert str(err.value).startswith(f"{refs_file}: cannot unpickle the refs (UnpicklingError: it names posix.system")
    assert "set data.trust_pickle=true" in str(err.value)


def test_plain_refs_load_with_and_without_trust(refer):  # noqa: F811
    for trust in (False, True):
        data = RefCOCODataset(str(refer["root"]), images=str(refer["images"]), trust_pickle=trust)
        assert data.item_ids == ["ref100_sent1000", "ref100_sent1001", "ref102_sent1020"]


@pytest.mark.parametrize("ref_id", ["../../../tmp/evil", "a/b", "..\\x"])
def test_ref_ids_that_would_escape_the_items_directory_are_refused(refer, ref_id):  # noqa: F811
    refs_file = refer["root"] / "refcoco" / "refs(unc).p"
    refs = pickle.loads(refs_file.read_bytes())
    refs[0]["ref_id"] = ref_id
    refs_file.write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(DataError, match=r"refs\(unc\).p: ref .*cannot name a file or directory"):
        RefCOCODataset(str(refer["root"]), images=str(refer["images"]))


@pytest.mark.parametrize("item_id", ["..", ".", "", "a/b", "/abs", "a\\b"])
def test_every_dataset_id_is_one_plain_name(tmp_path, item_id):
    with pytest.raises(DataError, match="cannot name a file or directory"):
        check_item_ids(["fine", item_id], "data=folder")
    with pytest.raises(DataError, match="cannot name a file or directory"):
        item_dir(tmp_path, item_id)
    with pytest.raises(DataError, match=r"item ids \['x'\] are not unique"):
        check_item_ids(["x", "y", "x"], "data=folder")
