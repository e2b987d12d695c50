"""save/load: safe, portable, atomic; and the pickle path from GPU to CPU."""

import copy
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback, EpochTimer
from skorch.exceptions import DeviceWarning

from skvae import DisentangledVAE, LinearDecay, persistence
from skvae._build import precision_problem
from skvae.metrics import elbo_scorer
from skvae.persistence import FORMAT_VERSION, ModelFileError

from tiny import tiny_vae




# digits: tests/conftest.py.


@pytest.fixture(scope="module")
def fitted(tiny_fitted):
    """tiny_vae() fitted on digits, shared (tests/conftest.py): read it only."""
    return tiny_fitted


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.skvae"
    fitted.save(path)
    return path


def fitted_variants(X, y):
    """A labelled model, one with string labels fitted on a DataFrame, a plain VAE."""
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
    return {
        "int labels": (tiny_vae(), X, y),
        "string labels, DataFrame": (tiny_vae(n_components=3, kl="standard"), frame, np.array(["ab", "c"])[y % 2]),
        "unlabelled": (tiny_vae(reconstruction="bce"), X, None),
    }


def assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    Z = a.transform(X)
    np.testing.assert_array_equal(a.inverse_transform(Z), b.inverse_transform(Z))
    if hasattr(a, "classes_"):
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("variant", ["int labels", "string labels, DataFrame", "unlabelled"])
def test_round_trip_is_bit_identical(digits, tmp_path, variant):
    estimator, X, y = fitted_variants(*digits)[variant]
    estimator.fit(X, y)
    estimator.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    assert_same_model(estimator, loaded, X)
    # Parameters and fitted attributes, with their types.
    assert repr(loaded.get_params()) == repr(estimator.get_params())
    names = ("classes_", "feature_names_in_", "class_centroids_", "class_covariances_", "class_prior_means_")
    for name in names:
        assert hasattr(loaded, name) == hasattr(estimator, name), name
        if getattr(estimator, name, None) is None:
            assert getattr(loaded, name, None) is None, name
        else:
            value, restored = getattr(estimator, name), getattr(loaded, name)
            assert restored.dtype == value.dtype, name
            np.testing.assert_array_equal(restored, value)
    # The string-label model is anchored (2 classes in 3-D), the others are not.
    assert (estimator.class_prior_means_ is not None) == (variant == "string labels, DataFrame")
    assert loaded.n_features_in_ == estimator.n_features_in_ == 64
    assert loaded.image_shape_ == estimator.image_shape_
    assert loaded.reconstruction_ == estimator.reconstruction_
    assert loaded.history_.to_list() == estimator.history_.to_list()
    assert (loaded.net_.n_steps_, loaded.net_.total_steps_) == (estimator.net_.n_steps_, estimator.net_.total_steps_)
    assert sorted(os.listdir(tmp_path)) == ["model.skvae"]


def test_file_is_tensors_and_json(saved):
    payload = torch.load(saved, weights_only=True)
    assert payload["format"] == "skvae.DisentangledVAE"
    assert payload["format_version"] == FORMAT_VERSION == 1
    metadata = json.loads(payload["metadata"])
    assert set(metadata) == {"params", "attributes", "history", "net"}
    assert metadata["params"]["classification_weight"] == {
        "__schedule__": "SigmoidDecay",
        "params": DisentangledVAE().classification_weight.get_params(),
    }
    assert metadata["attributes"]["n_features_in_"] == 64
    assert all(isinstance(t, torch.Tensor) for t in payload["state"]["module"].values())


def test_loaded_model_continues_training_exactly(digits, tmp_path):
    """Saved mid-training (after a Ctrl-C), loaded, and trained on: the
    same model as one uninterrupted fit, since the optimizer and random
    state are saved too."""
    class CtrlCInEpoch3(Callback):
        def on_batch_end(self, net, **kwargs):
            if len(net.history) == 3:
                raise KeyboardInterrupt

    X, y = digits
    interrupted = tiny_vae(max_epochs=4, callbacks=[CtrlCInEpoch3()])
    with pytest.warns(UserWarning, match="interrupted"):
        interrupted.fit(X, y)
    interrupted.set_params(callbacks=None).save(tmp_path / "model.skvae")
    resumed = DisentangledVAE.load(tmp_path / "model.skvae").set_params(warm_start=True).fit(X, y)
    full = tiny_vae(max_epochs=4).fit(X, y)
    assert resumed.history_[:, "train_loss"] == full.history_[:, "train_loss"]
    assert_same_model(resumed, full, X)


def test_storable_parameter_forms(digits, tmp_path):
    X, y = digits
    estimator = tiny_vae(
        max_epochs=1,
        hidden_dims=[16],
        optimizer=torch.optim.SGD,
        classification_weight=LinearDecay(start=5.0, end=np.float32(0.5)),
        device=torch.device("cpu"),
        random_state=np.int64(3),
    ).fit(X, y)
    estimator.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    params = loaded.get_params()
    assert params["hidden_dims"] == [16] and params["optimizer"] is torch.optim.SGD
    assert params["device"] == torch.device("cpu") and params["random_state"] == 3
    assert repr(params["classification_weight"]) == "LinearDecay(end=0.5, start=5.0)"
    tiny_vae(max_epochs=1, classification_weight=2.5).fit(X, y).save(tmp_path / "constant.skvae")
    assert DisentangledVAE.load(tmp_path / "constant.skvae").classification_weight == 2.5


class MyOptimizer(torch.optim.SGD):
    pass


@pytest.mark.parametrize(
    "params, match",
    [
        ({"callbacks": [EpochTimer()]}, r"Cannot save callbacks=.*callbacks=None does not change"),
        ({"classification_weight": lambda step, total: 1.0}, "Cannot save classification_weight="),
        ({"optimizer": MyOptimizer}, "Cannot save optimizer=.*MyOptimizer"),
        ({"random_state": np.random.RandomState(0)}, "Cannot save random_state=RandomState"),
    ],
)
def test_unstorable_parameters_are_refused(digits, tmp_path, params, match):
    # Fitted with them: the optimizer shapes the model, so it is saved as fitted.
    estimator = tiny_vae(max_epochs=1, **params).fit(*digits)
    with pytest.raises(ValueError, match=match):
        estimator.save(tmp_path / "model.skvae")
    assert os.listdir(tmp_path) == []


def test_save_before_fit(tmp_path):
    with pytest.raises(NotFittedError):
        DisentangledVAE().save(tmp_path / "model.skvae")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------- faulty files


def test_missing_file_or_folder_is_named(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file in") as info:
        DisentangledVAE.load(tmp_path / "missing.skvae")
    assert str(tmp_path / "missing.skvae") in str(info.value)
    with pytest.raises(FileNotFoundError, match="the folder .* does not exist") as info:
        DisentangledVAE.load(tmp_path / "nowhere" / "model.skvae")
    assert str(tmp_path / "nowhere") in str(info.value)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        DisentangledVAE.load(tmp_path)


def test_save_into_a_missing_folder_names_it(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it") as info:
        fitted.save(tmp_path / "models" / "model.skvae")
    message = str(info.value)
    assert repr(str(tmp_path / "models")) in message and ".part" not in message
    assert os.listdir(tmp_path) == []


def test_paths_may_be_str_bytes_or_path_like(fitted, digits, tmp_path):
    fitted.save(os.fsencode(tmp_path / "bytes.skvae"))
    fitted.save(str(tmp_path / "str.skvae"))
    for path in (os.fsencode(tmp_path / "bytes.skvae"), str(tmp_path / "str.skvae"), tmp_path / "str.skvae"):
        assert_same_model(DisentangledVAE.load(path), fitted, digits[0])
    for method in (fitted.save, DisentangledVAE.load):
        with pytest.raises(TypeError, match="path must be a str, bytes or os.PathLike object .*not int"):
            method(3)


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -1])
def test_truncated_file_is_refused(saved, tmp_path, keep):
    data = saved.read_bytes()
    keep = int(keep * len(data)) if isinstance(keep, float) else keep % len(data)
    (tmp_path / "cut.skvae").write_bytes(data[:keep])
    with pytest.raises(ModelFileError, match="not a readable skvae model file"):
        DisentangledVAE.load(tmp_path / "cut.skvae")


@pytest.mark.parametrize("part", ["tensor", "pickle"])
def test_corrupted_files_are_refused(saved, tmp_path, part):
    """torch.load does not check the zip's CRCs: a flipped bit in a tensor
    or in the pickle (the metadata) loads silently. The checksum catches
    the former; load checks the pickle's CRC before torch.load reads it."""
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:
        records = [info for info in archive.infolist() if ("/data/" in info.filename) == (part == "tensor")]
        record = max(records, key=lambda info: info.file_size)
    # The record's data follow its 30-byte local header, name and extra field.
    offset = record.header_offset + 30 + len(record.filename) + len(record.extra)
    data[offset + record.file_size // 2] ^= 0x01
    (tmp_path / "flipped.skvae").write_bytes(bytes(data))
    assert torch.load(tmp_path / "flipped.skvae", weights_only=True)  # loads silently
    with pytest.raises(ModelFileError, match="corrupted: its content does not match its checksum") as info:
        DisentangledVAE.load(tmp_path / "flipped.skvae")
    assert isinstance(info.value.__cause__, zipfile.BadZipFile) == (part == "pickle")  # the CRC


def test_compressed_archive_is_refused(saved, tmp_path):
    # torch.load would inflate its records, to any size they claim.
    with zipfile.ZipFile(saved) as stored, zipfile.ZipFile(tmp_path / "deflated.skvae", "w") as deflated:
        for info in stored.infolist():
            deflated.writestr(info.filename, stored.read(info), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelFileError, match="compressed records, which torch.save does not write"):
        DisentangledVAE.load(tmp_path / "deflated.skvae")


def test_edited_metadata_is_refused(saved, tmp_path):
    payload = torch.load(saved, weights_only=True)
    payload["metadata"] = payload["metadata"].replace('"n_components": 2', '"n_components": 3')
    torch.save(payload, tmp_path / "edited.skvae")
    with pytest.raises(ModelFileError, match="checksum"):
        DisentangledVAE.load(tmp_path / "edited.skvae")


def test_other_format_version_is_refused(saved, tmp_path):
    payload = torch.load(saved, weights_only=True)
    payload["format_version"] = 2
    torch.save(payload, tmp_path / "v2.skvae")
    with pytest.raises(ModelFileError, match="format version 2 .*reads version 1"):
        DisentangledVAE.load(tmp_path / "v2.skvae")


@pytest.mark.parametrize("content", [{"weights": torch.zeros(3)}, [1, 2], "text"])
def test_other_torch_files_are_refused(tmp_path, content):
    torch.save(content, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a model file written by DisentangledVAE.save"):
        DisentangledVAE.load(tmp_path / "other.pt")


class Exploit:
    """Unpickling this would create a file; load must never do it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_loading_never_runs_code_from_the_file(saved, tmp_path):
    marker = tmp_path / "exploited"
    payload = torch.load(saved, weights_only=True)
    payload["state"]["arrays"]["evil"] = Exploit(str(marker))
    torch.save(payload, tmp_path / "evil.skvae")
    with pytest.raises(ModelFileError, match="Python objects other than tensors and plain data"):
        DisentangledVAE.load(tmp_path / "evil.skvae")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Exploit(str(marker))))
    with pytest.raises(ModelFileError):
        DisentangledVAE.load(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_load_refuses_a_file_that_does_not_fit_its_parameters(fitted, saved, tmp_path):
    from skvae import persistence

    payload = torch.load(saved, weights_only=True)
    metadata = json.loads(payload["metadata"])
    metadata["params"]["hidden_dims"] = {"__tuple__": [8]}
    metadata["attributes"]["__class__"] = 1
    payload["metadata"] = json.dumps(metadata)
    payload["sha256"] = persistence._digest(payload["metadata"], payload["state"])
    torch.save(payload, tmp_path / "bad.skvae")
    with pytest.raises(ModelFileError, match="'__class__' is not a fitted attribute name"):
        DisentangledVAE.load(tmp_path / "bad.skvae")
    del metadata["attributes"]["__class__"]
    payload["metadata"] = json.dumps(metadata)
    payload["sha256"] = persistence._digest(payload["metadata"], payload["state"])
    torch.save(payload, tmp_path / "bad.skvae")
    with pytest.raises(ModelFileError, match="weights do not fit the network"):
        DisentangledVAE.load(tmp_path / "bad.skvae")


# Forged files: the checksum has no key, so a forger writes a valid one (as
# persistence does). Each must be refused with a ModelFileError, quickly and
# without allocating what its parameters ask for.


def _nested_list(depth):
    return "[" * depth + "]" * depth


def _set_param(name, value):
    def edit(payload, metadata):
        metadata["params"][name] = value

    return edit


def _edit_state(change):
    def edit(payload, metadata):
        change(payload["state"])

    return edit


def _set_module_tensor(name, value):
    return _edit_state(lambda state: state["module"].__setitem__(name, value))


def _huge_images(payload, metadata):
    # A conv network for 10**10-pixel images, whose first dense layer alone
    # would take 2.5 TB, with the file's (MLP) tensors.
    metadata["params"].update(architecture="conv", image_shape={"__tuple__": [100_000, 100_000]})
    metadata["attributes"].update(n_features_in_=10**10, image_shape_={"__tuple__": [1, 100_000, 100_000]})


def _long_hidden_dims(payload, metadata):
    # Building 400,000 layers, even as meta-device modules, would take a minute.
    metadata["params"]["hidden_dims"] = [16] * 200_000


def _worst_metadata_then(edit):
    # Just within the bounds, the metadata that takes json.loads the most
    # memory (dicts of one long distinct key; a callback may record such).
    def forge_both(payload, metadata):
        metadata["history"][0]["padding"] = [{f"{i:054d}": 0} for i in range(130_000)]
        edit(payload, metadata)

    return forge_both


FORGERIES = {
    "hidden_dims=(10**9,)": (_set_param("hidden_dims", {"__tuple__": [10**9]}), "has shape"),
    "hidden_dims=(200000, 200000)": (
        _set_param("hidden_dims", {"__tuple__": [200_000, 200_000]}),
        "lacks the module tensors",
    ),
    "n_components=10**8": (_set_param("n_components", 10**8), "has shape"),
    "huge image_shape": (_huge_images, "lacks the module tensors"),
    "200,000 hidden layers": (
        _long_hidden_dims,
        "make 400,001 hidden layers, each with a weight and a bias, but the file holds 14 tensors",
    ),
    "metadata nested 5000 deep": (
        lambda payload, metadata: metadata.update(deep="NESTED"),
        "metadata is nested more than 32 levels deep",
    ),
    "50 MB metadata string": (
        lambda payload, metadata: metadata.update(padding="x" * 50_000_000),
        r"pickled structure takes 47.7 MiB, more than the 12 MiB",
    ),
    "300,000 metadata values": (
        lambda payload, metadata: metadata.update(padding=[{}] * 150_000),
        r"metadata is about 300,\d{3} JSON values, more than the 262,144",
    ),
    "9 MB of metadata": (
        lambda payload, metadata: metadata.update(padding="x" * 9_000_000),
        r"metadata is 9,00\d,\d{3} characters of JSON text, more than the 8,388,608",
    ),
    "metadata just within the bounds, then a wrong shape": (
        _worst_metadata_then(_set_module_tensor("encoder.mu.weight", torch.zeros(3, 16))),
        r"module tensor 'encoder.mu.weight' has shape \(3, 16\)",
    ),
    "pickle of 300,000 operations": (
        _edit_state(lambda state: state.update(padding=list(range(300, 300_300)))),
        "more than 200,000 operations",
    ),
    "state nested 40 deep": (
        _edit_state(lambda state: state.update(padding=json.loads(_nested_list(40)))),
        "content is nested more than 32 levels deep",
    ),
    "wrong tensor shape": (
        _set_module_tensor("encoder.mu.weight", torch.zeros(3, 16)),
        r"module tensor 'encoder.mu.weight' has shape \(3, 16\) in the file, .* has \(2, 16\)",
    ),
    "missing tensor": (
        _edit_state(lambda state: state["module"].pop("decoder.out.bias")),
        r"lacks the module tensors \['decoder.out.bias'\]",
    ),
    "extra tensor": (
        _set_module_tensor("encoder.extra.weight", torch.zeros(1)),
        r"holds module tensors \['encoder.extra.weight'\]",
    ),
    "wrong dtype": (
        _set_module_tensor("encoder.mu.weight", torch.zeros(2, 16, dtype=torch.float64)),
        "'encoder.mu.weight' is torch.float64 in the file, but the network's is torch.float32",
    ),
    "not a tensor": (_set_module_tensor("encoder.mu.weight", [[0.0] * 16] * 2), "not a dict of named tensors"),
    "optimizer state of the wrong shape": (
        _edit_state(lambda state: state["optimizer"]["state"][0].update(exp_avg=torch.zeros(5))),
        r"optimizer state 'exp_avg' of parameter 0 has shape \(5,\)",
    ),
    "wrong random state": (
        _edit_state(lambda state: state["rng"].update(cpu=torch.zeros(10, dtype=torch.uint8))),
        "CPU generator state has shape",
    ),
    "state is a list": (lambda payload, metadata: payload.update(state=[1, 2]), "its state is a list, not a dict"),
}


def forge(saved, path, edit):
    """Write to ``path`` the file ``saved`` changed by ``edit(payload, metadata)``,
    with a valid checksum."""
    payload = torch.load(saved, weights_only=True)
    metadata = json.loads(payload["metadata"])
    edit(payload, metadata)
    payload["metadata"] = json.dumps(metadata).replace('"NESTED"', _nested_list(5000))
    payload["sha256"] = persistence._digest(payload["metadata"], payload["state"])
    torch.save(payload, path)
    return path


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_files_are_refused(saved, tmp_path, forgery):
    edit, match = FORGERIES[forgery]
    path = forge(saved, tmp_path / "forged.skvae", edit)
    with pytest.raises(ModelFileError, match=match):
        DisentangledVAE.load(path)


# Loads each file in a process that loaded a model already (imports done).
# Linux resets a process's peak resident memory (VmHWM, which ru_maxrss
# reports) when "5" is written to /proc/self/clear_refs: the peak after a
# load, less the resident memory before it, is what the load took.
MEASURE_LOADS = r"""
import json, re, sys, time
from skvae import DisentangledVAE
from skvae.persistence import ModelFileError

def memory_kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\s+(\d+) kB", status.read()).group(1))

DisentangledVAE.load(sys.argv[1])
results = {}
for path in sys.argv[2:]:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    before = memory_kib("VmRSS")
    start = time.perf_counter()
    try:
        DisentangledVAE.load(path)
        outcome = "loaded"
    except ModelFileError:
        outcome = "refused"
    except BaseException as exc:
        outcome = repr(exc)
    seconds = time.perf_counter() - start
    results[path] = [outcome, seconds, (memory_kib("VmHWM") - before) / 1024]
print(json.dumps(results))
"""


def _can_reset_peak_memory():
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _can_reset_peak_memory(), reason="measures memory with Linux's /proc/self/clear_refs")
def test_forged_files_are_refused_fast_and_in_little_memory(saved, tmp_path):
    paths = [forge(saved, tmp_path / f"forged{i}.skvae", edit) for i, (edit, _) in enumerate(FORGERIES.values())]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run(
        [sys.executable, "-c", MEASURE_LOADS, str(saved), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.splitlines()[-1])
    for forgery, path in zip(FORGERIES, paths):
        outcome, seconds, extra_mb = results[str(path)]
        assert outcome == "refused", (forgery, outcome)
        assert seconds < 1.0, (forgery, seconds)
        assert extra_mb < 100, (forgery, extra_mb)


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_keeps_the_previous_file(digits, saved, tmp_path, monkeypatch, failure):
    path = tmp_path / "model.skvae"
    path.write_bytes(saved.read_bytes())
    other = tiny_vae(max_epochs=1, random_state=1).fit(*digits)

    def write_half_then_fail(obj, file, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise failure

    real_save = torch.save
    monkeypatch.setattr(torch, "save", write_half_then_fail)
    with pytest.raises(type(failure)):
        other.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.skvae"]  # no temporary file left
    assert path.read_bytes() == saved.read_bytes()
    DisentangledVAE.load(path)


def test_save_replaces_an_existing_file(digits, saved, tmp_path):
    path = tmp_path / "model.skvae"
    path.write_bytes(saved.read_bytes())
    other = tiny_vae(max_epochs=1, random_state=1).fit(*digits)
    other.save(path)
    assert_same_model(DisentangledVAE.load(path), other, digits[0])
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_save_honours_umask_and_writes_through_symlinks(fitted, digits, tmp_path):
    old_umask = os.umask(0o077)
    try:
        fitted.save(tmp_path / "private.skvae")
    finally:
        os.umask(old_umask)
    assert oct(os.stat(tmp_path / "private.skvae").st_mode & 0o777) == "0o600"

    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "model.skvae"
    link = tmp_path / "latest.skvae"
    link.symlink_to(target)  # dangling until the first save
    fitted.save(link)
    fitted.save(link)  # and again over the existing target
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert sorted(os.listdir(tmp_path)) == ["latest.skvae", "models", "private.skvae"]
    assert os.listdir(tmp_path / "models") == ["model.skvae"]
    assert_same_model(DisentangledVAE.load(target), fitted, digits[0])


def test_save_refuses_a_read_only_file(saved, tmp_path):
    path = tmp_path / "model.skvae"
    path.write_bytes(b"keep me")
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        DisentangledVAE.load(saved).save(path)
    assert path.read_bytes() == b"keep me"


# ------------------------------------------------------------ portability


def test_saved_cuda_model_loads_on_cpu(digits, tmp_path, monkeypatch):
    from skvae import persistence

    estimator = tiny_vae(max_epochs=1).fit(*digits)
    # A file as a GPU machine writes it: device="cuda" among the parameters.
    persistence.save(
        tmp_path / "model.skvae",
        params={**estimator.get_params(deep=False), "device": "cuda"},
        attributes={
            name: value for name, value in vars(estimator).items() if name not in ("net_", "history_", "setup_")
        },
        training_state=estimator.net_.get_training_state(),
        split_seed=None,
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="saved with device='cuda'.*loading the model on the CPU"):
        loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    assert loaded.device == "cpu" and loaded.net_.device == torch.device("cpu")
    assert_same_model(loaded, estimator, digits[0])
    with pytest.raises(ValueError, match="CUDA is not available"):
        DisentangledVAE.load(tmp_path / "model.skvae", device="cuda")


def test_pickle_of_a_gpu_model_unpickles_on_cpu(fitted, digits, monkeypatch):
    """Pickle with the module's and optimizer's storages tagged as CUDA
    storages, as on a GPU, and unpickle here without CUDA: skorch maps them
    to the CPU, and the net's own state (random state, counters) is CPU
    data already."""
    net = fitted.net_
    on_gpu = {
        tensor.untyped_storage().data_ptr()
        for tensor in [*net.module_.state_dict().values(), *_tensors(net.optimizer_.state_dict())]
    }
    real_tag = torch.serialization.location_tag
    monkeypatch.setattr(
        torch.serialization,
        "location_tag",
        lambda storage: "cuda:0" if storage.data_ptr() in on_gpu else real_tag(storage),
    )
    monkeypatch.setattr(net, "device", torch.device("cuda"))
    data = pickle.dumps(fitted)
    monkeypatch.undo()
    assert b"cuda:0" in data
    with pytest.warns(DeviceWarning, match=r"(?i)no cuda devices are available|cuda\) is not available"):
        loaded = pickle.loads(data)
    assert torch.device(loaded.net_.device) == torch.device("cpu")
    assert all(t.device.type == "cpu" for t in loaded.net_.module_.state_dict().values())
    assert all(t.device.type == "cpu" for t in loaded.net_.rng_state_.values())
    assert_same_model(loaded, fitted, digits[0])


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)


def test_joblib_round_trip(fitted, digits, tmp_path):
    joblib.dump(fitted, tmp_path / "model.joblib")
    assert_same_model(joblib.load(tmp_path / "model.joblib"), fitted, digits[0])


def test_files_from_before_max_epochs_auto_still_load(digits, tmp_path):
    # Version-1 files written before max_epochs="auto" have no max_epochs_.
    from skvae import persistence
    from tiny import tiny_vae

    X, y = digits
    # Nor input_dropout="auto" (so no input_dropout_): a number was stored.
    vae = tiny_vae(input_dropout=0.2).fit(X, y)
    attributes = {
        name: value
        for name, value in vars(vae).items()
        if name not in ("net_", "history_", "setup_", "max_epochs_", "input_dropout_")
    }
    persistence.save(
        tmp_path / "old.skvae",
        params=vae.get_params(deep=False),
        attributes=attributes,
        training_state=vae.net_.get_training_state(),
        split_seed=None,
    )
    loaded = DisentangledVAE.load(tmp_path / "old.skvae")
    assert loaded.max_epochs_ == vae.max_epochs == 3
    assert loaded.input_dropout == loaded.input_dropout_ == vae.input_dropout_
    np.testing.assert_array_equal(loaded.transform(X), vae.transform(X))
    loaded.set_params(warm_start=True, max_epochs=4).fit(X, y)
    assert len(loaded.history_) == 4


def test_files_from_before_input_dropout_load_without_it(digits, tmp_path):
    # Models saved before input_dropout existed were trained without it; a
    # warm start of such a model must go on that way, not with the default.
    from skvae import persistence
    from tiny import tiny_vae

    X, y = digits
    vae = tiny_vae(input_dropout=0.0).fit(X, y)
    params = {name: value for name, value in vae.get_params(deep=False).items() if name != "input_dropout"}
    persistence.save(
        tmp_path / "old.skvae",
        params=params,
        attributes={
            name: value for name, value in vars(vae).items() if name not in ("net_", "history_", "setup_", "input_dropout_")
        },
        training_state=vae.net_.get_training_state(),
        split_seed=None,
    )
    loaded = DisentangledVAE.load(tmp_path / "old.skvae")
    assert loaded.input_dropout == loaded.input_dropout_ == loaded.net_.module_.input_dropout == 0.0
    np.testing.assert_array_equal(loaded.transform(X), vae.transform(X))


@pytest.mark.parametrize(
    "changed",
    [
        {"hidden_dims": (32,)},
        {"n_components": 3},
        {"classifier_hidden": (4,)},
        {"architecture": "conv", "image_shape": (8, 8)},
        {"kl": "abs"},
        {"input_dropout": 0.5, "reconstruction": "mse", "beta": 2.0},
        {"precision": "bf16-mixed"},
    ],
    ids=lambda changed: ",".join(changed),
)
def test_a_fitted_model_is_what_was_fitted_until_refitted(tiny_fitted, digits, tmp_path, changed):
    """set_params after fit changes the parameters, not the fitted model:
    its outputs and the file it saves stay those of the fit."""
    X = digits[0]
    changed_model = copy.deepcopy(tiny_fitted).set_params(**changed)
    assert_same_model(changed_model, tiny_fitted, X)
    changed_model.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    assert_same_model(loaded, tiny_fitted, X)
    # The loss too (kl, beta, reconstruction): the same ELBO.
    assert elbo_scorer(loaded, X) == elbo_scorer(tiny_fitted, X)
    assert {name: loaded.get_params()[name] for name in changed} == {
        name: tiny_fitted.get_params()[name] for name in changed
    }
    # Refitted, it is the model the new parameters describe.
    if changed.get("precision") == "bf16-mixed" and precision_problem("bf16-mixed", torch.device("cpu")):
        return  # this CPU cannot train in bfloat16
    refitted = changed_model.set_params(max_epochs=1).fit(*digits)
    assert refitted.transform(X).shape[1] == refitted.n_components


def test_files_of_the_oldest_layout_load_with_the_values_they_were_trained_with(digits, tmp_path):
    # A version-1 file as the first skvae versions wrote it: without the
    # keys added since (input_dropout, max_epochs_, input_dropout_ and the
    # net's loss scale), made by removing them from a file of today.
    X, y = digits
    vae = tiny_vae(input_dropout=0.0).fit(X, y)
    vae.save(tmp_path / "new.skvae")

    def remove_newer_keys(payload, metadata):
        del metadata["params"]["input_dropout"], metadata["net"]["grad_scaler"]
        del metadata["attributes"]["max_epochs_"], metadata["attributes"]["input_dropout_"]
        del metadata["attributes"]["early_stopping_"]

    old = DisentangledVAE.load(forge(tmp_path / "new.skvae", tmp_path / "old.skvae", remove_newer_keys))
    assert old.input_dropout == old.input_dropout_ == old.net_.module_.input_dropout == 0.0
    assert old.max_epochs_ == old.max_epochs == 3
    assert not old.net_.grad_scaler_.is_enabled()
    assert_same_model(old, vae, X)
    assert repr(old.get_params()) == repr(vae.get_params())


def test_upgrade_metadata_fills_what_older_files_lack():
    current = {
        "params": {"max_epochs": "auto", "input_dropout": "auto", "early_stopping": "auto", "architecture": "auto"},
        "attributes": {
            "max_epochs_": 12, "input_dropout_": 0.2, "early_stopping_": True, "compile_": True, "architecture_": "conv"
        },
        "history": [],
        "net": {"grad_scaler": {"scale": 2.0}},
    }
    assert persistence._upgrade_metadata(json.loads(json.dumps(current))) == current
    oldest = {"params": {"max_epochs": 7, "early_stopping": False}, "attributes": {}, "history": [], "net": {}}
    assert persistence._upgrade_metadata(oldest) == {
        "params": {"max_epochs": 7, "early_stopping": False, "input_dropout": 0.0, "architecture": "mlp"},
        "attributes": {
            "max_epochs_": 7, "input_dropout_": 0.0, "early_stopping_": False, "compile_": False, "architecture_": "mlp"
        },
        "history": [],
        "net": {"grad_scaler": {}},
    }
    # The conv models of files without architecture_ had a decoder this skvae does not build.
    old_conv = {"params": {"max_epochs": 7, "early_stopping": False, "architecture": "conv"}, "attributes": {},
                "history": [], "net": {}}
    with pytest.raises(ValueError, match="architecture='conv' model comes without architecture_.*refit"):
        persistence._upgrade_metadata(old_conv)
    # "auto" existed only once max_epochs_ was saved: a file without it is not one skvae wrote.
    with pytest.raises(ValueError, match="max_epochs='auto' comes without max_epochs_"):
        persistence._upgrade_metadata(
            {"params": {"max_epochs": "auto", "early_stopping": False}, "attributes": {}, "history": [], "net": {}}
        )


def test_save_refuses_metadata_that_load_would_refuse(digits, tmp_path, monkeypatch):
    vae = tiny_vae().fit(*digits)
    # A tiny model's history exceeds a bound lowered to 3,000 characters.
    monkeypatch.setattr(persistence, "_MAX_METADATA_CHARS", 3000)
    advice = r"training history of 3 epochs, is .* more than the 3,000 .*epoch\['batches'\] = \[\]"
    with pytest.raises(ValueError, match=advice):
        vae.save(tmp_path / "model.skvae")
    assert os.listdir(tmp_path) == []
    # What the message advises makes it fit, and the model loads.
    for epoch in vae.history_:
        epoch["batches"] = []
    vae.save(tmp_path / "model.skvae")
    assert_same_model(DisentangledVAE.load(tmp_path / "model.skvae"), vae, digits[0])
