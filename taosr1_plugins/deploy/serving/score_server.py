"""The relevance scoring server: POST /v1/score -> p(level), argmax label, CumPT tier and score per pair.

    taosr1 serve --model DIR --cumpt cumpt.json [--host 127.0.0.1 --port 8080]

Request: ``{"pairs": [{"query": "...", "item": "title" | {"title": ..., "brand": ...}, "id": "optional"}],
"explain": "never" | "always" | "auto"}`` (``explain`` optional: the server's ``--explain-mode``; a bare JSON
list of pairs is accepted too). Response: ``{"results": [{"id", "probs", "label", "tier", "score"
[, "margin"] [, "explanation"]}], ...}`` in request order: the scored-pair fields of a `taosr1 score` row,
from the same builder (scored_pair.py): ``probs`` and ``label`` are the model's own, ``tier``, ``score`` and
``margin`` (the tier's distance from changing, with a cumpt.json) are read from the calibrated distribution.
Unless the request's mode is ``never`` every result has ``explanation``: the reasoning the model writes
after the served tier's label, or null when that pair was not explained (``auto``: its margin was not
below ``--explain-margin``). GET /healthz reports the model, scheme and counters.

Pairs from all concurrent requests go into one queue; a single worker thread (the model is not safe to
call from several threads) takes up to ``max_batch`` pairs, waiting at most ``max_wait`` seconds for the
batch to fill, and scores them in one padded forward pass. Bad requests (body too large, invalid JSON,
missing or wrong fields, too many pairs) get a 4xx whose message names the problem; the server keeps
serving.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taosr1_plugins.deploy.config import ExplainSettings
from taosr1_plugins.deploy.cumpt import CumPT
from taosr1_plugins.deploy.scored_pair import ScoredPair, score_pair
from taosr1_plugins.errors import field_path
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.deploy.scoring import DEFAULT_EXPLAIN_MARGIN, EXPLAIN_MODES, ExplainPolicy
from taosr1_plugins.deploy.serving.batching import MicroBatcher
from taosr1_plugins.deploy.serving.http_guard import (
    REQUEST_TIMEOUT_S, RequestError, Shutdown, check_port, check_worker, make_server, parse_json_body, read_body,
    run_server, validation_message, wait_for_answers, worker_health,
)

DEFAULT_EXPLAIN_TOKENS = ExplainSettings.model_fields["max_explain_tokens"].default


@dataclass
class Limits:
    max_pairs: int = 64  # pairs per request
    max_body_bytes: int = 1 << 20
    max_chars: int = 4000  # per query / item text field
    max_pending: int = 4096  # pairs queued across requests before new requests get 429


class ScorePair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    query: str = Field(min_length=1)
    item: str | Item


@dataclass
class PairJob:
    record: Record
    explain: ExplainPolicy | None = None  # None: never


class PairScoring:
    """What the batcher runs on its thread: a batch's forward pass, each pair scored (calibrated once), then
    explanations for the pairs whose policy wants one, in one generate call (the model is not safe to
    share). Returns (scored pair, explanation or None) per pair."""

    def __init__(self, scorer, cumpt: CumPT | None = None):
        self.scorer = scorer
        self.cumpt = cumpt
        self.explained = 0
        self.explain_failed = 0

    def __call__(self, batch: list[PairJob]) -> list[tuple[ScoredPair, str | None]]:
        probs = self.scorer.probabilities([job.record for job in batch])
        pairs = [score_pair(p, self.scorer.scheme, self.cumpt) for p in probs]
        return list(zip(pairs, self._explanations(batch, pairs)))

    def _explanations(self, batch: list[PairJob], pairs: list[ScoredPair]) -> list[str | None]:
        texts: list[str | None] = [None] * len(batch)
        wanted = [i for i, (job, pair) in enumerate(zip(batch, pairs))
                  if job.explain is not None and job.explain.wants(pair)]
        if not wanted:
            return texts
        try:  # the reasoning continues after the tier that is served
            decoded = self.scorer.explain([batch[i].record for i in wanted], [pairs[i].tier for i in wanted])
        except Exception:
            # the label and tier are already known and correct: serve them, without the reasoning
            self.explain_failed += len(wanted)
            return texts
        for i, text in zip(wanted, decoded):
            texts[i] = text
        self.explained += len(wanted)
        return texts


def _pair_error(exc: ValidationError, raw) -> dict:
    """The error to report: for an item sent as an object, the object's own problem (not "not a string")."""
    errors = exc.errors()
    if isinstance(raw, dict) and isinstance(raw.get("item"), dict):
        errors = [e for e in errors if e["loc"][:2] != ("item", "str")] or errors
    err = dict(errors[0])
    err["loc"] = tuple(part for k, part in enumerate(err["loc"]) if not (k == 1 and part in ("str", "Item")))
    return err


REQUEST_FIELDS = {"pairs", "explain"}


def parse_explain(body: bytes) -> str | None:
    """The request's own explain mode, if it names one (the body was already checked by parse_pairs)."""
    data = parse_json_body(body)
    mode = data.get("explain") if isinstance(data, dict) else None
    if mode is not None and mode not in EXPLAIN_MODES:
        raise RequestError(422, f"explain: must be one of {', '.join(EXPLAIN_MODES)}, got {mode!r}")
    return mode


def parse_pairs(body: bytes, limits: Limits, scheme_name: str) -> list[Record]:
    """Request body -> records, or RequestError naming what is wrong."""
    data = parse_json_body(body)
    if isinstance(data, dict):
        if set(data) - REQUEST_FIELDS:
            raise RequestError(422, f"unknown fields {sorted(set(data) - REQUEST_FIELDS)}; send {{\"pairs\": [...]}}")
        if "pairs" not in data:
            raise RequestError(422, "missing field 'pairs'")
        data = data["pairs"]
    if not isinstance(data, list):
        raise RequestError(422, "'pairs' must be a list of {query, item} objects")
    if not data:
        raise RequestError(422, "'pairs' is empty")
    if len(data) > limits.max_pairs:
        raise RequestError(413, f"{len(data)} pairs in one request; the limit is {limits.max_pairs}")
    records = []
    for i, raw in enumerate(data):
        try:
            pair = ScorePair.model_validate(raw)
        except ValidationError as exc:
            err = _pair_error(exc, raw)
            raise RequestError(422, f"pairs[{i}].{field_path(err['loc'])}: {err['msg']}") from None
        if isinstance(pair.item, str) and not pair.item.strip():
            raise RequestError(422, f"pairs[{i}].item: an empty string is not an item")
        item = Item(title=pair.item) if isinstance(pair.item, str) else pair.item
        texts = {"query": pair.query, "item": item.model_dump_json()}
        for name, text in texts.items():
            if len(text) > limits.max_chars:
                raise RequestError(413, f"pairs[{i}].{name} has {len(text)} characters; the limit is {limits.max_chars}")
        try:  # the record's own rules too (e.g. a query of only whitespace), as 422, not a 500 later
            records.append(Record(id=pair.id or f"pair-{i}", query=pair.query, item=item, scheme=scheme_name))
        except ValidationError as exc:
            raise RequestError(422, f"pairs[{i}].{validation_message(exc)}") from None
    return records


def create_app(scorer, *, cumpt: CumPT | None = None, model_name: str = "model", max_batch: int = 16,
               max_wait: float = 0.01, limits: Limits | None = None, explain: str = "never",
               explain_margin: float = DEFAULT_EXPLAIN_MARGIN):
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    limits = limits or Limits()
    scheme = scorer.scheme
    ExplainPolicy(explain, explain_margin, cumpt)  # a bad default stops the server before it serves
    policies = {mode: ExplainPolicy(mode, explain_margin, cumpt) for mode in EXPLAIN_MODES
                if mode != "auto" or cumpt is not None}
    app = FastAPI(title="taosr1 relevance scoring")
    scoring = PairScoring(scorer, cumpt)
    batcher = MicroBatcher(scoring, max_batch=max_batch, max_wait=max_wait, name="score")
    stats = {"requests": 0, "rejected": 0, "failed": 0}
    app.state.batcher = batcher
    app.state.scheme = scheme
    app.state.shutdown = shutdown = Shutdown()

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": {"message": message, "code": status}}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):  # FastAPI's own validation (e.g. query parameters)
        return error(422, validation_message(exc))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        code, status = worker_health(batcher)
        return JSONResponse(status_code=code, content={
            **status,
            "model": model_name, "scheme": scheme.name, "levels": scheme.keys,
            "cumpt": cumpt is not None, "calibrated": cumpt is not None and cumpt.calibration is not None,
            "batches": batcher.batches, "pairs": batcher.items,
            "largest_batch": batcher.largest_batch, "max_batch": batcher.max_batch, "pending": batcher.pending,
            "explain": explain, "explain_margin": explain_margin, "explained": scoring.explained,
            "explain_failed": scoring.explain_failed, **stats,
        })

    async def score(request):  # a plain Starlette route: the raw body is parsed and checked by parse_pairs
        try:
            body = await read_body(request, limits.max_body_bytes)
            records = parse_pairs(body, limits, scheme.name)
            mode = parse_explain(body) or explain
            if mode not in policies:
                raise RequestError(422, "explain: 'auto' decides by the CumPT tier margin; this server has no cumpt.json")
            if batcher.pending + len(records) > limits.max_pending:
                raise RequestError(429, f"{batcher.pending} pairs are queued; retry later")
            check_worker(batcher, shutdown)
        except RequestError as exc:
            stats["rejected"] += 1
            return error(exc.status, exc.message, exc.headers)
        policy = policies[mode] if mode != "never" else None
        try:
            answers = await wait_for_answers([batcher.submit(PairJob(record, policy)) for record in records], shutdown)
        except RequestError as exc:  # 503: the worker died, or the server is stopping
            stats["failed"] += 1
            return error(exc.status, exc.message, exc.headers)
        except Exception as exc:
            stats["failed"] += 1
            return error(500, f"scoring failed: {type(exc).__name__}: {exc}")
        stats["requests"] += 1
        results = []
        for record, (pair, text) in zip(records, answers):
            result = {"id": record.id, **pair.fields()}
            if mode != "never":
                result["explanation"] = text
            results.append(result)
        return JSONResponse({"model": model_name, "scheme": scheme.name, "tiering": "cumpt" if cumpt else "argmax",
                             "calibrated": cumpt is not None and cumpt.calibration is not None,
                             "explain": mode, "results": results})

    app.router.add_route("/v1/score", score, methods=["POST"])

    return app


def load_app(model: str, *, cumpt_path: str | None = None, scheme: str | None = None, backend: str = "hf",
             device: str = "auto", max_batch: int = 16, max_wait: float = 0.01, limits: Limits | None = None,
             explain: str = "never", explain_margin: float = DEFAULT_EXPLAIN_MARGIN,
             max_explain_tokens: int = DEFAULT_EXPLAIN_TOKENS):
    """The app `taosr1 serve` runs: the model and cumpt.json loaded as the command line names them. The scheme is
    ``scheme``, the model folder's or the cumpt.json's (they must agree), else taosr1."""
    from taosr1_plugins.core.model_scheme import resolve_model_scheme
    from taosr1_plugins.deploy.calibration import load_cumpt
    from taosr1_plugins.deploy.config import ScoreSettings
    from taosr1_plugins.deploy.scoring import load_scorer, resolve_scoring_model

    cumpt_file = load_cumpt(cumpt_path) if cumpt_path else None
    cumpt = cumpt_file.to_cumpt() if cumpt_file else None
    ExplainPolicy(explain, explain_margin, cumpt)  # before the model loads
    name, model = str(model), resolve_scoring_model(model, backend)
    label_scheme = resolve_model_scheme(model, scheme, cumpt_file, default="taosr1")
    scorer = load_scorer(model, label_scheme, ScoreSettings(backend=backend, device=device, batch_size=max_batch,
                                                            max_explain_tokens=max_explain_tokens))
    return create_app(scorer, cumpt=cumpt, model_name=name, max_batch=max_batch, max_wait=max_wait,
                      limits=limits, explain=explain, explain_margin=explain_margin)


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8080, exit_after: float | None = None,
          log_level: str = "warning", request_timeout: float = REQUEST_TIMEOUT_S, **app_options) -> None:
    """Load the model and serve until interrupted (or for ``exit_after`` seconds); ``app_options``: load_app's."""
    check_port(host, port)
    app = load_app(model, **app_options)
    server = make_server(app, host=host, port=port, log_level=log_level, request_timeout=request_timeout)
    print(f"scoring with {model} ({app.state.scheme.name}) on http://{host}:{port}/v1/score", flush=True)
    run_server(server, exit_after)
