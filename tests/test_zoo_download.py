"""The model zoo downloads itself (issue 32): ``deeplab.from_preset(name)`` and
``preset:NAME`` fetch the zoo's tarball from a real local HTTP server (``zoo_server``;
nothing of the network layer is mocked) into ``$DEEPLAB_HOME/zoo``, check it, import it
once, and work from the cache without a server after that.

Download cases use a tarball laid out as the zoo's with random checkpoint bytes (they
never import it); the end-to-end cases import a real (randomised) MobileNetV2 checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from shared_runs import ENV, REPO, last_line, run_binary
from zoo_server import (
    ZooServer,
    assert_same_weights,
    fake_zoo_tarball,
    randomize,
    write_zoo_tarball,
)

import deeplab
from deeplab.weights.archive import ArchiveError
from deeplab.weights.download import DownloadError, DownloadSettings
from deeplab.weights.presets import PRESETS
from deeplab.weights.zoo_cache import CacheEntry, OfflineError, cached_model, fetch_archive

DM05 = PRESETS["mobilenetv2_dm05_coco_voc_trainaug"]
FILE = f"{DM05.tarball}.tar.gz"
FAST = DownloadSettings(timeout=0.5, retries=2, backoff=0.01, progress_interval=0.0)
# What the in-process from_preset calls and the binaries read (DownloadSettings.from_env).
FAST_ENV = {"DEEPLAB_DOWNLOAD_TIMEOUT": "0.5", "DEEPLAB_DOWNLOAD_RETRIES": "2",
            "DEEPLAB_DOWNLOAD_BACKOFF": "0.01"}


@pytest.fixture
def server():
    served = ZooServer(stall_seconds=2.0, slow_seconds=1.5)
    yield served
    served.stop()


@pytest.fixture
def zoo(server, tmp_path, monkeypatch):
    """The server as the zoo (``DEEPLAB_ZOO_URL``), an empty ``DEEPLAB_HOME``, no proxy,
    short timeouts; the fake tarball served. Returns the server."""
    monkeypatch.setenv("DEEPLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEEPLAB_ZOO_URL", server.base_url)
    monkeypatch.delenv("DEEPLAB_OFFLINE", raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "")
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    server.files[f"/models/{FILE}"] = fake_zoo_tarball(DM05.tarball)
    return server


def fetch(**options) -> tuple:
    """``fetch_archive`` of the dm05 preset with the fast settings: (path, what it said)."""
    stream = io.StringIO()
    path = fetch_archive(DM05, settings=options.pop("settings", FAST), stream=stream, **options)
    return path, stream.getvalue()


def cache_listing(entry: CacheEntry) -> list[str]:
    return sorted(p.name for p in entry.folder.iterdir())


def test_a_download_shows_progress_and_enters_the_cache_complete_with_its_hash(zoo):
    body = zoo.files[f"/models/{FILE}"]
    path, said = fetch()
    entry = CacheEntry(DM05)
    assert path == entry.archive and path.read_bytes() == body
    digest = hashlib.sha256(body).hexdigest()
    assert entry.record.read_text() == f"{digest}  {FILE}\n"  # sha256sum's form
    url = zoo.base_url + FILE
    # Size, speed and ETA as it goes (a line per interval when not a terminal), then the end.
    size = f"{len(body) / 1024:.1f} KB"
    assert re.search(rf"^downloading {re.escape(url)}: 256\.0 KB of {size} \(\d+\.\d%\), "
                     r"[\d.]+ [KMG]?B/s, elapsed \d:\d\d:\d\d, ETA \d:\d\d:\d\d$", said, re.M), said
    assert re.search(rf"^downloaded {re.escape(url)}: {size} in [\d.]+ s \([\d.]+ [KMG]?B/s\)$",
                     said, re.M), said
    assert f"cached {path} (SHA-256 {digest})" in said
    assert cache_listing(entry) == sorted([FILE, f"{FILE}.sha256", f".{DM05.tarball}.lock"])

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    entry.archive.unlink()
    fetch_archive(DM05, settings=FAST, stream=terminal)
    assert "\rdownloading " in terminal.getvalue()  # rewritten in place on a terminal


def test_404_is_one_line_naming_the_url(zoo):
    del zoo.files[f"/models/{FILE}"]
    with pytest.raises(DownloadError) as raised:
        fetch()
    assert str(raised.value) == f"could not download {zoo.base_url}{FILE}: HTTP 404 Not Found"
    assert len(zoo.gets(FILE)) == 1  # a 404 is not retried
    assert not CacheEntry(DM05).archive.exists() and not CacheEntry(DM05).part.exists()


def test_500_twice_then_200_is_retried_with_backoff(zoo):
    zoo.script[f"/models/{FILE}"] = [500, 500]
    path, said = fetch()
    assert len(zoo.gets(FILE)) == 3 and path.read_bytes() == zoo.files[f"/models/{FILE}"]
    url = zoo.base_url + FILE
    assert said.count(f"{url}: HTTP 500 Internal Server Error; retrying in") == 2
    assert "retrying in 0.01 s" in said and "retrying in 0.02 s" in said  # doubled


def test_a_dropped_connection_resumes_with_a_range_request(zoo):
    body = zoo.files[f"/models/{FILE}"]
    zoo.script[f"/models/{FILE}"] = ["drop"]
    path, said = fetch()
    requests = zoo.gets(FILE)
    assert [r["range"] for r in requests] == [None, f"bytes={len(body) // 2}-"]
    assert path.read_bytes() == body
    assert re.search(r"connection (lost|closed) after 1\d\d\.\d KB of 2\d\d\.\d KB", said), said

    # A .part left by an earlier process (killed mid-download) is resumed too.
    entry = CacheEntry(DM05)
    for name in (entry.archive, entry.record):
        name.unlink()
    entry.part.write_bytes(body[:100_000])
    path, said = fetch()
    assert zoo.gets(FILE)[-1]["range"] == "bytes=100000-" and path.read_bytes() == body
    assert "resuming" in said and not entry.part.exists()
    # One stopped after the last byte, before its check: nothing more to fetch (HTTP 416).
    for name in (entry.archive, entry.record):
        name.unlink()
    entry.part.write_bytes(body)
    path, said = fetch()
    assert zoo.gets(FILE)[-1]["range"] == f"bytes={len(body)}-" and path.read_bytes() == body


def test_a_stalling_server_times_out_in_one_line(zoo):
    zoo.script[f"/models/{FILE}"] = ["stall"] * 3
    entry = CacheEntry(DM05)
    started = time.monotonic()
    with pytest.raises(DownloadError) as raised:
        fetch(settings=DownloadSettings(timeout=0.3, retries=1, backoff=0.01))
    assert time.monotonic() - started < 1.5
    url = zoo.base_url + FILE
    assert str(raised.value) == (
        f"could not download {url}: timed out (nothing received for 0.3 s) (2 tries); without "
        f"network, download {url} on a machine with network access and put it at "
        f"{entry.archive}")
    assert not entry.archive.exists()


def test_a_body_that_is_not_gzip_never_enters_the_cache(zoo):
    zoo.script[f"/models/{FILE}"] = ["garbage"]
    with pytest.raises(ArchiveError) as raised:
        fetch()
    assert str(raised.value) == (
        f"the file downloaded from {zoo.base_url}{FILE} is not a usable model zoo tarball (not "
        "a complete gzip/tar archive); nothing was kept in the cache")
    entry = CacheEntry(DM05)
    assert cache_listing(entry) == [f".{DM05.tarball}.lock"]


def test_a_redirect_is_followed(zoo):
    zoo.files["/mirror/elsewhere.tar.gz"] = zoo.files[f"/models/{FILE}"]
    zoo.script[f"/models/{FILE}"] = [("redirect", "/mirror/elsewhere.tar.gz")]
    path, _ = fetch()
    assert [r["path"] for r in zoo.requests] == [f"/models/{FILE}", "/mirror/elsewhere.tar.gz"]
    assert path.read_bytes() == zoo.files["/mirror/elsewhere.tar.gz"]


def test_a_cached_file_truncated_by_hand_is_detected_named_and_fetched_again(zoo):
    path, _ = fetch()
    recorded = CacheEntry(DM05).recorded_sha256()
    with open(path, "r+b") as f:
        f.truncate(1000)
    damaged = hashlib.sha256(path.read_bytes()).hexdigest()
    path, said = fetch()
    assert f"cached {path} is damaged: its SHA-256 is {damaged}, not {recorded} as recorded " \
        "when it was downloaded; removed it, fetching it again" in said
    assert len(zoo.gets(FILE)) == 2 and path.read_bytes() == zoo.files[f"/models/{FILE}"]


def test_offline_mode_with_and_without_a_cached_file(zoo, monkeypatch):
    monkeypatch.setenv("DEEPLAB_OFFLINE", "1")
    entry = CacheEntry(DM05)
    url = zoo.base_url + FILE
    with pytest.raises(OfflineError) as raised:
        fetch()
    assert str(raised.value) == (
        f"DEEPLAB_OFFLINE is set and {DM05.name} is not in the cache: download {url} on a "
        f"machine with network access and put it at {entry.archive} (or unset "
        "DEEPLAB_OFFLINE)")
    assert zoo.requests == []
    # Pre-seeded by hand, as the line says: checked, its hash recorded, used offline.
    entry.archive.write_bytes(zoo.files[f"/models/{FILE}"])
    path, said = fetch()
    assert path == entry.archive and zoo.requests == []
    assert f"checked {path} and recorded its SHA-256 {entry.recorded_sha256()} (first use)" \
        in said
    path, said = fetch()
    assert said == "" and zoo.requests == []


def test_no_network_is_one_line_with_the_url_and_the_path(zoo, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DEEPLAB_ZOO_URL", f"http://127.0.0.1:{port}/models")
    with pytest.raises(DownloadError) as raised:
        fetch()
    url = f"http://127.0.0.1:{port}/models/{FILE}"
    assert str(raised.value) == (
        f"could not download {url}: Connection refused (3 tries); without network, download "
        f"{url} on a machine with network access and put it at {CacheEntry(DM05).archive}")


def test_the_proxy_variables_are_honoured(zoo, monkeypatch):
    proxy = ZooServer()
    try:
        proxy.files[f"/models/{FILE}"] = zoo.files[f"/models/{FILE}"]
        monkeypatch.setenv("http_proxy", proxy.base_url.rsplit("/models/", 1)[0])
        path, _ = fetch()
    finally:
        proxy.stop()
    assert zoo.requests == [] and [r["proxied"] for r in proxy.requests] == [True]
    assert path.read_bytes() == zoo.files[f"/models/{FILE}"]


def test_a_pinned_hash_is_checked(zoo):
    digest = hashlib.sha256(zoo.files[f"/models/{FILE}"]).hexdigest()
    with pytest.raises(ValueError) as raised:
        fetch(file_hash="0" * 64)
    assert str(raised.value) == (f"the file downloaded from {zoo.base_url}{FILE} has SHA-256 "
                                 f"{digest}, not the pinned {'0' * 64}; it was not kept")
    assert not CacheEntry(DM05).archive.exists()
    path, _ = fetch(file_hash=f"sha256:{digest.upper()}")
    assert path.is_file()
    with pytest.raises(ValueError, match=f"cached {path} has SHA-256 {digest}, not the pinned "
                       f"{'1' * 64}: check the hash, or delete the file"):
        fetch(file_hash="1" * 64)
    with pytest.raises(ValueError, match="file_hash / --sha256 'abc' is not a SHA-256"):
        fetch(file_hash="abc")


def test_two_processes_at_once_download_once_and_both_succeed(zoo, tmp_path):
    """Two fresh interpreters fetch the same preset while the server sends slowly (1.5 s):
    one downloads, the other waits on the lock and reuses the file."""
    zoo.script[f"/models/{FILE}"] = ["slow", "slow"]
    code = ("import sys; from deeplab.weights.presets import PRESETS; "
            "from deeplab.weights.zoo_cache import fetch_archive; "
            "print(fetch_archive(PRESETS['mobilenetv2_dm05_coco_voc_trainaug']))")
    env = {**ENV, **FAST_ENV, "DEEPLAB_HOME": os.environ["DEEPLAB_HOME"],
           "DEEPLAB_ZOO_URL": zoo.base_url, "no_proxy": "*"}
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
                 for _ in range(2)]
    results = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    entry = CacheEntry(DM05)
    assert [(status, out.strip()) for status, out, _ in results] == \
        [(0, str(entry.archive))] * 2, results
    assert len(zoo.gets(FILE)) == 1
    assert sum("waiting for PID" in err for _, _, err in results) == 1, results
    assert entry.archive.read_bytes() == zoo.files[f"/models/{FILE}"]
    assert cache_listing(entry) == sorted([FILE, f"{FILE}.sha256", f".{DM05.tarball}.lock"])


@pytest.fixture(scope="module")
def dm05_source(tmp_path_factory):
    """The dm05 preset's model with random weights and its tarball in the zoo's layout."""
    folder = tmp_path_factory.mktemp("dm05")
    source = randomize(deeplab.from_preset(DM05.name, load_weights=False), seed=11)
    return source, write_zoo_tarball(source, folder, DM05.tarball).read_bytes()


def test_from_preset_downloads_imports_once_then_loads_from_the_cache_without_server(
        zoo, dm05_source, capsys, monkeypatch):
    source, tarball = dm05_source
    zoo.files[f"/models/{FILE}"] = tarball
    model = deeplab.from_preset(DM05.name)
    assert_same_weights(source, model)
    said = capsys.readouterr().err
    assert f"downloaded {zoo.base_url}{FILE}" in said and f"importing {FILE}" in said
    entry = CacheEntry(DM05)
    stamp = json.loads(entry.stamp.read_text())
    assert stamp["tarball_sha256"] == hashlib.sha256(tarball).hexdigest()
    assert stamp["weights_sha256"] == hashlib.sha256(entry.weights.read_bytes()).hexdigest()
    assert json.loads(entry.config.read_text())["labels"]["class_names"][15] == "person"
    assert not [p for p in entry.folder.iterdir() if ".part" in p.name or ".tmp" in p.name]

    zoo.stop()  # from now on there is no server: the cache serves
    monkeypatch.setenv("DEEPLAB_ZOO_URL", "http://127.0.0.1:9/unreachable/")
    assert_same_weights(source, deeplab.from_preset(DM05.name))
    assert "importing" not in capsys.readouterr().err
    # A damaged imported file is imported again from the (intact) tarball.
    with open(entry.weights, "r+b") as f:
        f.truncate(4096)
    assert_same_weights(source, deeplab.from_preset(DM05.name))
    assert f"importing {FILE}" in capsys.readouterr().err


@pytest.mark.slow
def test_from_preset_with_other_classes_fresh_weights_and_as_an_initial_checkpoint(
        zoo, dm05_source, monkeypatch):
    """The cached import serves ``num_classes=N`` (a new last layer), ``load_weights=False``
    and ``--tf_initial_checkpoint=preset:NAME``, offline (six model builds: about 15 s)."""
    source, tarball = dm05_source
    zoo.files[f"/models/{FILE}"] = tarball
    entry = CacheEntry(DM05)
    cached_model(DM05, stream=io.StringIO())
    zoo.stop()
    monkeypatch.setenv("DEEPLAB_OFFLINE", "1")
    # Another class count: a new last layer, everything else the zoo's.
    six = deeplab.from_preset(DM05.name, num_classes=6)
    assert six.config.num_classes == 6
    zoo_weights = {v.path: np.asarray(v) for v in source.weights}
    for variable in six.weights:
        if not variable.path.startswith("logits"):
            np.testing.assert_array_equal(np.asarray(variable), zoo_weights[variable.path])
    # Fresh weights on request, and preset:NAME for --tf_initial_checkpoint.
    fresh = deeplab.from_preset(DM05.name, load_weights=False)
    assert not np.array_equal(np.asarray(fresh.weights[0]), np.asarray(source.weights[0]))
    from deeplab.training.initialization import initialize_from_checkpoint

    lines = initialize_from_checkpoint(fresh, f"preset:{DM05.name}")
    assert lines[0].startswith(f"initialised {len(fresh.weights)} variables from {entry.weights}")
    assert_same_weights(source, fresh)


def test_predict_takes_preset_names_and_says_offline_what_to_do(zoo, tmp_path):
    """One binary run: ``--checkpoint_path=preset:NAME`` is resolved through the cache (here
    offline and empty, so the one line says where to put the file)."""
    env = {**ENV, **FAST_ENV, "DEEPLAB_HOME": os.environ["DEEPLAB_HOME"],
           "DEEPLAB_ZOO_URL": zoo.base_url, "DEEPLAB_OFFLINE": "1"}
    result = run_binary("deeplab.cli.predict", f"--checkpoint_path=preset:{DM05.name}",
                        f"--input={tmp_path}", f"--output_dir={tmp_path / 'out'}", env=env)
    assert result.returncode == 1
    assert last_line(result) == (
        f"deeplab-predict: DEEPLAB_OFFLINE is set and {DM05.name} is not in the cache: download "
        f"{zoo.base_url}{FILE} on a machine with network access and put it at "
        f"{CacheEntry(DM05).archive} (or unset DEEPLAB_OFFLINE)")


MNV2 = PRESETS["mobilenetv2_coco_voc_trainaug"]


def voc_like_records(tiny_data, folder):
    """The tiny records as a 21-class data set (PASCAL's names), for a zoo model's eval."""
    from deeplab.data.descriptor import DatasetDescriptor, get_dataset, write_dataset_json

    shutil.copytree(tiny_data, folder)
    sizes = json.loads((folder / "dataset.json").read_text())["splits"]
    (folder / "dataset.json").unlink()
    voc = get_dataset("pascal_voc_seg")
    write_dataset_json(str(folder), DatasetDescriptor(
        "voc_like", {s: v["num_examples"] if isinstance(v, dict) else v
                     for s, v in sizes.items()}, 21, 255, voc.class_names, "pascal"))
    return folder


@pytest.mark.slow
def test_the_one_line_use_and_the_binaries_against_the_test_server(zoo, tmp_path, tiny_data):
    """The issue's "done when": ``python -c "import deeplab; m = deeplab.from_preset(...)"``
    downloads with progress, imports and caches; a second interpreter needs no server;
    ``deeplab-import-weights --preset``, ``deeplab-export`` and ``deeplab-eval`` with
    ``preset:NAME`` use the same cache; vis and convert resolve ``preset:NAME`` too (eight
    interpreters, most of them importing TensorFlow and building a model: 90 to 120 s)."""
    source = randomize(deeplab.from_preset(MNV2.name, load_weights=False), seed=5)
    zoo.files[f"/models/{MNV2.tarball}.tar.gz"] = write_zoo_tarball(
        source, tmp_path, MNV2.tarball).read_bytes()
    env = {**ENV, **FAST_ENV, "DEEPLAB_HOME": os.environ["DEEPLAB_HOME"],
           "DEEPLAB_ZOO_URL": zoo.base_url, "no_proxy": "*"}
    code = (f"import deeplab; m = deeplab.from_preset({MNV2.name!r}); "
            "m.save_weights('out.weights.h5')")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"downloaded {zoo.base_url}{MNV2.tarball}.tar.gz" in first.stderr
    assert f"importing {MNV2.tarball}.tar.gz" in first.stderr
    zoo.stop()
    env["DEEPLAB_ZOO_URL"] = "http://127.0.0.1:9/unreachable/"
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "download" not in second.stderr and "importing" not in second.stderr
    again = deeplab.from_preset(MNV2.name, load_weights=False)
    again.load_weights(str(tmp_path / "out.weights.h5"))
    assert_same_weights(source, again)

    imported = run_binary("deeplab.cli.import_weights", f"--preset={MNV2.name}", env=env)
    assert imported.returncode == 0, imported.stderr[-2000:]
    entry = CacheEntry(MNV2)
    assert f"imported model: {entry.weights} and its .config.json" in imported.stdout
    assert f"model zoo: {MNV2.name}" in imported.stdout
    copied = run_binary("deeplab.cli.import_weights", f"--input={MNV2.name}",
                        f"--output={tmp_path / 'mine.weights.h5'}", f"--sha256={'0' * 64}",
                        env=env)
    assert last_line(copied) == (
        f"import_weights: cached {entry.archive} has SHA-256 "
        f"{entry.recorded_sha256()}, not the pinned {'0' * 64}: check the hash, or delete the "
        "file to download it again")
    exported = run_binary("deeplab.cli.export_model", f"--checkpoint_path=preset:{MNV2.name}",
                          f"--export_path={tmp_path / 'export'}", env=env)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert (tmp_path / "export" / "1" / "saved_model.pb").is_file()
    records = voc_like_records(tiny_data, tmp_path / "records")
    evaluated = run_binary("deeplab.cli.eval", f"--checkpoint_path=preset:{MNV2.name}",
                           f"--dataset_dir={records}", f"--eval_logdir={tmp_path / 'eval'}",
                           env=env)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f"the model zoo reports 75.32% (val, output stride 16, scales 1) for {MNV2.name}" \
        in evaluated.stdout
    other = PRESETS["mobilenetv2_dm05_coco_voc_trainval"]  # not cached: the offline line
    for module, args in (("deeplab.cli.vis", [f"--checkpoint_dir=preset:{other.name}",
                                              f"--dataset_dir={records}",
                                              f"--vis_logdir={tmp_path / 'vis'}"]),
                         ("deeplab.cli.convert_to_tflite",
                          [f"--checkpoint_path=preset:{other.name}",
                           f"--output_tflite_path={tmp_path / 'x.tflite'}"])):
        result = run_binary(module, *args, env={**env, "DEEPLAB_OFFLINE": "1"})
        assert result.returncode == 1
        assert f"DEEPLAB_OFFLINE is set and {other.name} is not in the cache: download " \
            f"http://127.0.0.1:9/unreachable/{other.tarball}.tar.gz" in last_line(result), \
            (module, last_line(result))


def test_the_download_settings_come_from_the_environment_and_bad_values_are_named():
    assert DownloadSettings.from_env({}) == DownloadSettings(30.0, 4, 1.0, 5.0)
    assert DownloadSettings.from_env({"DEEPLAB_DOWNLOAD_TIMEOUT": "2.5",
                                      "DEEPLAB_DOWNLOAD_RETRIES": "0",
                                      "DEEPLAB_DOWNLOAD_BACKOFF": "0"}) == \
        DownloadSettings(2.5, 0, 0.0, 5.0)
    with pytest.raises(ValueError, match=r"^DEEPLAB_DOWNLOAD_TIMEOUT='0' is not a valid timeout "
                       r"\(a number > 0\)$"):
        DownloadSettings.from_env({"DEEPLAB_DOWNLOAD_TIMEOUT": "0"})
    with pytest.raises(ValueError, match=r"^DEEPLAB_DOWNLOAD_RETRIES='many' is not a valid "
                       r"retries \(a number >= 0\)$"):
        DownloadSettings.from_env({"DEEPLAB_DOWNLOAD_RETRIES": "many"})
