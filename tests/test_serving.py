"""`mqe serve`: a real server process on loopback, called through the robot-side client.

The policy is a small image MQE (8x8 uint8 frames, impala_debug encoder) saved as a policy checkpoint at
its initialisation: serving is about moving frames in and actions out exactly, which needs no training.
The run carries action statistics (``action_normalization.json``), so the server answers in the robot's
units; every answer is checked against the same checkpoint's actions computed in this process and
de-normalised with them.
"""

import concurrent.futures
import contextlib
import json
import os
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import mqe  # noqa: E402
from mqe import checkpoint as ckpt  # noqa: E402
from mqe.agents import AGENTS  # noqa: E402
from mqe.cli import main  # noqa: E402
from mqe.config import make_config  # noqa: E402
from mqe.data.dataset import Dataset  # noqa: E402
from mqe.data.robot import ActionNormalization  # noqa: E402
from mqe.serving import PolicyClient, PolicyServerError, RequestError, decode_array, encode_array, model_rows  # noqa: E402
from mqe.serving.launch import ServedPolicy  # noqa: E402
from mqe.train import initial_state  # noqa: E402

SHAPE = (8, 8, 3)
MAX_BODY_MB = 0.05  # 52 KB: an 8x8 frame pair is ~1 KB of JSON
NORMALIZATION = ActionNormalization(low=(-0.05, 0.0), high=(0.05, 1.0))  # e.g. a position delta and a gripper


def _frames(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("served")
    config = make_config("mqe", None, ["batch_size=4", "latent_dim=16", "encoder_hidden_dims=16,16",
                                       "actor_hidden_dims=16,16", "encoder=impala_debug"])
    frames = _frames(40, 0)
    terminals = np.zeros(40, bool)
    terminals[-1] = True
    dataset = Dataset.from_arrays(frames, np.zeros((40, 2), np.float32), terminals)
    agent, _ = initial_state(config, dataset)
    ckpt.save_policy(str(run), step=7, config=config.to_dict(), stored_dtype="float32",
                     params={k: agent.params[k] for k in AGENTS["mqe"].agent_class.POLICY_NETWORKS},
                     observation_shape=SHAPE, action_dim=2)
    NORMALIZATION.save(str(run))  # trained on normalised actions: the server answers in the robot's units
    return str(run)


@pytest.fixture(scope="module")
def server(policy_run):
    """(url, process): `mqe serve` on a free loopback port, up until the module's tests are done."""
    with ServedPolicy(policy_run, "--max-batch", "8", "--max-body-mb", str(MAX_BODY_MB)) as served:
        assert "mqe (step 7, observation (8, 8, 3) uint8, 2 actions)" in served.banner
        yield served.url, served.process


class _Local:
    """The checkpoint's own actions, computed in this process, in the robot's units."""

    def __init__(self, run):
        self.model = mqe.load(run)

    def act(self, obs, goals):
        return NORMALIZATION.denormalize(self.model.act(obs, goals))


@pytest.fixture(scope="module")
def local(policy_run):
    return _Local(policy_run)


def test_health_and_actions_equal_the_checkpoints_own(server, local):
    url, _ = server
    with PolicyClient(url) as client:
        health = client.health()
        assert health["status"] == "ok" and health["agent"] == "mqe" and health["step"] == 7
        assert health["observation_shape"] == [8, 8, 3] and health["observation_dtype"] == "uint8"
        assert health["action_dim"] == 2 and health["max_batch"] == 8
        assert health["action_units"] == "de-normalised with action_normalization.json (q01-q99)"
        obs, goals = _frames(11, 1), _frames(11, 2)
        expected = local.act(obs, goals)
        one = client.act(obs[0], goals[0])
        assert one.shape == (2,) and one.dtype == np.float32
        np.testing.assert_allclose(one, expected[0], atol=1e-5)
        batch = client.act(obs, goals)  # 11 rows: a chunk of 8 and a padded chunk of 3 (to 4)
        assert batch.shape == (11, 2)
        np.testing.assert_allclose(batch, expected, atol=1e-5)
        assert np.all((batch >= NORMALIZATION.low) & (batch <= NORMALIZATION.high))
        assert not np.allclose(batch, local.model.act(obs, goals), atol=1e-3)  # really de-normalised


def test_100_concurrent_requests_each_get_their_own_answer(server, local):
    url, _ = server
    obs, goals = _frames(100, 3), _frames(100, 4)
    expected = local.act(obs, goals)
    with PolicyClient(url) as probe:
        before = probe.health()["served"]
    clients = threading.local()

    def ask(i):
        if not hasattr(clients, "client"):
            clients.client = PolicyClient(url)
        return i, clients.client.act(obs[i], goals[i])

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        answers = dict(pool.map(ask, range(100)))
    assert sorted(answers) == list(range(100))
    np.testing.assert_allclose(np.stack([answers[i] for i in range(100)]), expected, atol=1e-5)
    with PolicyClient(url) as probe:
        after = probe.health()["served"]
    assert after["requests"] - before["requests"] == 100 and after["rows"] - before["rows"] == 100
    # Requests that arrived while the device was busy shared its calls.
    assert after["batches"] - before["batches"] < 100


def _post(url, body, headers=None):
    with PolicyClient(url) as client:
        return client.request("POST", "/act", body, {"Content-Type": "application/json", **(headers or {})})


def _payload(**fields):
    body = {"observation": encode_array(_frames(1, 5)[0]), "goal": encode_array(_frames(1, 6)[0])}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


MALFORMED = {
    "wrong image size": (lambda: _payload(observation=encode_array(np.zeros((9, 8, 3), np.uint8))), 400,
                         "observation: expected shape (8, 8, 3) or (N, 8, 8, 3) with N >= 1, got (9, 8, 3)"),
    "wrong dtype": (lambda: _payload(goal=encode_array(np.zeros(SHAPE, np.float32))), 400,
                    "goal: this model takes uint8 frames; got float32"),
    "missing field": (lambda: _payload(goal=None), 400, "goal: required field missing"),
    "misspelt field": (lambda: _payload(goal_image=[1]), 400, "goal_image: not a field of this request"),
    "NaN": (lambda: _payload(observation=np.full(SHAPE, np.nan).tolist()), 400,
            "observation: values must be finite"),
    "not JSON": (lambda: b"{observation: [", 400, "body: not valid JSON"),
    "bad base64": (lambda: _payload(goal={"shape": [8, 8, 3], "dtype": "uint8", "data": "@@@@"}), 400,
                   "goal: data is not valid base64"),
    "short data": (lambda: _payload(goal={"shape": [8, 8, 3], "dtype": "uint8", "data": "AAAA"}), 400,
                   "goal: data holds 3 bytes; shape [8, 8, 3] of uint8 needs 192"),
    "rows differ": (lambda: _payload(observation=encode_array(_frames(2, 7)), goal=encode_array(_frames(3, 8))),
                    400, "goal: 3 goals for 2 observations"),
    # The fault probe's shapes and values: each was a plain-text 500 before the decoder bounded them.
    "huge declared shape": (lambda: _payload(goal={"shape": [2**64, 0], "dtype": "uint8", "data": ""}), 400,
                            "goal: shape [18446744073709551616, 0] holds more than"),
    "huge 5-d shape": (lambda: _payload(goal={"shape": [2**62, 0, 64, 64, 3], "dtype": "uint8", "data": ""}), 400,
                       "goal: shape [4611686018427387904, 0, 64, 64, 3] holds more than"),
    "100 dimensions": (lambda: _payload(observation={"shape": [1] * 100, "dtype": "uint8", "data": "AA=="}), 400,
                       "observation: 100 dimensions; expected at most 8"),
    "400-digit integer": (lambda: _payload(observation=[10**400] + [0] * 191), 400,
                          "observation: a list must hold numbers only (integers within float range)"),
    "strings in a list": (lambda: _payload(goal=["1"] * 192), 400,
                          "goal: list values must be numbers (not strings, booleans or null)"),
    "booleans in a list": (lambda: _payload(goal=[True] * 192), 400,
                           "goal: list values must be numbers (not strings, booleans or null)"),
    "oversized body": (lambda: _payload(observation=encode_array(_frames(300, 9))), 413,
                       "bytes is more than this server takes (52428; mqe serve --max-body-mb)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_request_gets_a_clear_error_and_the_server_stays_up(server, case):
    url, proc = server
    make_body, status, message = MALFORMED[case]
    code, answer = _post(url, make_body())
    assert code == status, answer
    assert message in answer["error"], answer
    assert proc.poll() is None
    with PolicyClient(url) as client:
        assert client.health()["status"] == "ok"
        assert client.act(_frames(1, 10)[0], _frames(1, 11)[0]).shape == (2,)


def test_a_body_without_its_length_is_refused(server):
    url, proc = server
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/act", body=iter([_payload()]), headers={"Content-Type": "application/json"},
                 encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]
    conn.close()
    assert proc.poll() is None


def test_the_client_raises_with_the_servers_message(server):
    url, _ = server
    with PolicyClient(url) as client, pytest.raises(PolicyServerError, match="observation: expected shape") as err:
        client.act(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8))
    assert err.value.status == 400 and err.value.field == "observation"


def test_wire_format_checks_for_state_models():
    rows = model_rows(decode_array([[0.5, 1.0, 2.0]], "observation"), "observation", (3,), "float32")
    assert rows.dtype == np.float32 and rows.shape == (1, 3)
    same = model_rows(decode_array(encode_array(np.arange(3.0)), "goal"), "goal", (3,), "float32")
    np.testing.assert_array_equal(same, [[0.0, 1.0, 2.0]])
    for bad, message in (([0.0, np.inf, 1.0], "finite"), ([[1.0, 2.0], [3.0]], "rectangular"),
                         ("abc", "nested lists"), ({"shape": [3], "dtype": "float64", "data": ""}, "dtype must be")):
        with pytest.raises(RequestError, match=message):
            model_rows(decode_array(bad, "observation"), "observation", (3,), "float32")
    with pytest.raises(RequestError, match=r"whole numbers in \[0, 255\]"):
        model_rows(decode_array(np.full(SHAPE, 300.0).tolist(), "goal"), "goal", SHAPE, "uint8")


def test_serve_names_a_missing_run(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such run directory or checkpoint" in capsys.readouterr().err
    assert os.path.exists(tmp_path)


@contextlib.contextmanager
def _stub_server(answer):
    """A plain HTTP server on loopback whose every request gets ``answer(handler) -> (status, content type,
    body)``; yields its URL."""
    import http.server

    class Stub(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            if self.headers.get("Content-Length"):
                self.rfile.read(int(self.headers["Content-Length"]))
            status, content_type, body = answer(self)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_client_recovers_after_a_timeout():
    """A timed-out request leaves its connection mid-request; the next call must open a new one (a robot's
    control loop retries)."""
    import time

    calls = []

    def slow_once(handler):
        calls.append(handler.path)
        if len(calls) == 1:
            time.sleep(1.5)  # longer than the client's timeout
        return 200, "application/json", json.dumps({"status": "ok"}).encode()

    with _stub_server(slow_once) as url:
        with PolicyClient(url, timeout=0.5) as client:
            with pytest.raises(TimeoutError):
                client.request("GET", "/health")
            assert client.request("GET", "/health") == (200, {"status": "ok"})


def test_a_server_that_cannot_start_is_reported_with_its_error(tmp_path):
    with pytest.raises(RuntimeError, match="mqe serve did not start(.|\n)*nowhere: no such run directory"):
        with ServedPolicy(str(tmp_path / "nowhere")):
            pass


def test_a_non_json_error_body_reaches_the_caller_as_a_policy_server_error():
    """A proxy's HTML page or a plain-text 500 is a PolicyServerError with its status, not a JSONDecodeError."""
    with _stub_server(lambda handler: (500, "text/plain", b"Internal Server Error")) as url:
        with PolicyClient(url) as client:
            with pytest.raises(PolicyServerError) as raised:
                client.act(_frames(1, 1)[0], _frames(1, 2)[0])
    assert raised.value.status == 500 and "Internal Server Error" in raised.value.message


def test_the_decoder_answers_any_json_value_with_an_array_or_a_field_error():
    """Property: whatever JSON value arrives, decode_array returns an array or raises RequestError naming the
    field (never another exception), and model_rows likewise."""
    from hypothesis import example, given, settings, strategies as st

    leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**500), max_value=10**500),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
    json_values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                               st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                               max_leaves=30)
    encoded = st.fixed_dictionaries({
        "shape": st.one_of(st.lists(st.integers(min_value=-2, max_value=2**70), max_size=12), json_values),
        "dtype": st.one_of(st.sampled_from(["uint8", "float32", "float64", "int8"]), json_values),
        "data": st.one_of(st.binary(max_size=64).map(lambda b: __import__("base64").b64encode(b).decode()),
                          json_values)})

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(json_values, encoded))
    @example({"shape": [0, 117, 11677, 262044, 6440779], "dtype": "float32", "data": ""})  # found by this test
    def check(value):
        try:
            array = decode_array(value, "observation")
        except RequestError as exc:
            assert exc.field == "observation"
            return
        assert isinstance(array, np.ndarray)
        try:
            rows = model_rows(array, "observation", SHAPE, "uint8")
        except RequestError as exc:
            assert exc.field == "observation"
            return
        assert rows.dtype == np.uint8 and rows.shape[1:] == SHAPE

    check()



def test_a_token_is_required_when_set_and_the_api_docs_are_off_by_default(policy_run):
    with ServedPolicy(policy_run, "--max-batch", "2", "--token", "s3cret") as served:
        with PolicyClient(served.url, token="") as anonymous:
            anonymous.token = None
            status, answer = anonymous.request("GET", "/health")
            assert status == 401 and answer["field"] == "authorization"
            status, _ = anonymous.request("POST", "/act", _payload(), {"Content-Type": "application/json"})
            assert status == 401
        with PolicyClient(served.url, token="wrong") as wrong:
            with pytest.raises(PolicyServerError) as raised:
                wrong.act(_frames(1, 1)[0], _frames(1, 2)[0])
            assert raised.value.status == 401
            many = np.zeros((2600, *SHAPE), np.uint8)  # ~670 KB: the 401 arrives after the body, not a broken pipe
            with pytest.raises(PolicyServerError) as raised:
                wrong.act(many, many)
            assert raised.value.status == 401
        status, _ = PolicyClient(served.url, token="").request("GET", "/health", None,
                                                                {"Authorization": "bearer s3cret"})
        assert status == 200, "the scheme is case-insensitive (RFC 7235)"
        with PolicyClient(served.url, token="s3cret") as client:
            assert client.health()["max_body_bytes"] == 16 * 2**20
            assert client.act(_frames(1, 1)[0], _frames(1, 2)[0]).shape == (2,)
            assert client.request("GET", "/docs")[0] == 404 and client.request("GET", "/openapi.json")[0] == 404


def test_https_with_a_certificate_the_test_makes(policy_run, tmp_path):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    with ServedPolicy(policy_run, "--max-batch", "2", "--tls-cert", cert, "--tls-key", key, "--api-docs") as served:
        assert served.url.startswith("https://")
        with PolicyClient(served.url, cafile=cert) as client:
            assert client.act(_frames(1, 1)[0], _frames(1, 2)[0]).shape == (2,)
            assert client.request("GET", "/openapi.json")[0] == 200  # --api-docs publishes the schema
        import ssl

        with PolicyClient(served.url) as untrusting:  # the system's CAs do not know this certificate
            with pytest.raises(ssl.SSLError):
                untrusting.health()


def test_the_client_refuses_a_body_the_server_would_refuse(server):
    url, _ = server
    with PolicyClient(url) as client:
        big = np.zeros((300, *SHAPE), np.uint8)  # ~77 KB of frames, over the test server's 52 KB limit
        frames = np.repeat(big, 20, axis=0)  # and over 1 MB, where the client checks before sending
        with pytest.raises(PolicyServerError) as raised:
            client.act(frames, frames)
        assert raised.value.status == 413 and "mqe serve --max-body-mb" in raised.value.message
        assert client.max_body_bytes == int(MAX_BODY_MB * 2**20)


def test_a_non_loopback_address_without_a_token_is_warned_about(policy_run, capsys):
    """192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes before the bind, which fails."""
    with pytest.raises(SystemExit, match="cannot listen on 192.0.2.1"):
        main(["serve", str(policy_run), "--host", "192.0.2.1", "--port", "0", "--max-batch", "1"])
    err = capsys.readouterr().err
    assert "WARNING: listening on 192.0.2.1 without a token" in err and "SSH tunnel" in err
