"""The pipeline's one entry: ``serve(svc, ctx) -> Outcome``.

Every caller (the HTTP handlers; later a batch worker, the cache, an MCP tool loop) builds a
:class:`~sluice.pipeline.context.RequestContext` and calls :func:`serve`, which runs the
stages in the order of ``docs/architecture.md``:

1. access (:func:`sluice.pipeline.access.admit`): the caller runs it to build the context,
   which carries the resolved model;
2. documents (:mod:`sluice.pipeline.documents`): attached files read, and their text
   extracted where a deployment needs it (it counts in the estimate);
3. limits and budget hold (:mod:`sluice.pipeline.hold`): reserve the estimates;
4. response cache (:mod:`sluice.pipeline.cache`): a hit is replayed and the request ends
   (its hold released: no tokens, no cost); otherwise the answer may be kept;
5. route and attempts (:mod:`sluice.pipeline.attempts`): deployments, retries, fallbacks,
   breakers, under the request's deadline;
6. relay (:mod:`sluice.pipeline.relay`): one attempt's answer to the sink, priced
   (:mod:`sluice.pipeline.cost`) and settled before its last bytes;
7. settle (:meth:`sluice.pipeline.hold.Hold.close`): whatever is still held, from the
   outcome.

:func:`serve` returns on every path (errors, the client going away, shutdown): the answer,
an error included, has gone to the sink, and the :class:`~sluice.pipeline.outcome.Outcome`
says what happened. The caller builds the usage row from the two
(:func:`sluice.pipeline.outcome.usage_row`).
"""

from __future__ import annotations

import asyncio
import logging

from sluice.documents.request import may_carry
from sluice.errors import ErrorKind, GatewayError, shutting_down
from sluice.pipeline import cache as cache_stage
from sluice.pipeline import cost, documents
from sluice.pipeline.attempts import Attempts, request_facts
from sluice.pipeline.context import RequestContext
from sluice.pipeline.hold import Hold, reserve
from sluice.pipeline.outcome import Outcome, disconnected
from sluice.pipeline.relay import Tally
from sluice.pipeline.services import Services

log = logging.getLogger("sluice.pipeline")

_new = tuple.__new__


async def serve(svc: Services, ctx: RequestContext) -> Outcome:
    """Serve one admitted request; never raises (the outcome says how it ended)."""
    tally = Tally()
    tries = Attempts(svc, ctx, tally)
    hold: Hold | None = None
    error: GatewayError | None = None
    plan: cache_stage.Plan | None = None
    try:
        docs = tries.docs = (  # no call for a request without documents (the hot path)
            await documents.prepare(svc, ctx)
            if svc.documents is not None and may_carry(ctx.request)
            else None
        )
        hold = await reserve(
            svc, ctx, extra_prompt_chars=0 if docs is None else docs.extracted_chars
        )
        if svc.cache is not None:
            looked = await cache_stage.look_up(svc, svc.cache, ctx)
            if isinstance(looked, Outcome):
                if hold is not None:  # a hit spends no tokens and no budget
                    await hold.release(refund_request=not svc.cache.count_rpm)
                return looked
            plan = looked
            ctx = tries.ctx = plan.ctx
        facts = await request_facts(svc, ctx) if svc.router.policy.enabled else None
        await tries.run(
            headers=ctx.base_headers if hold is None else ctx.base_headers + hold.headers,
            final=None if hold is None else hold.settle,
            facts=facts,
        )
    except GatewayError as exc:
        exc.message = svc.redactor(exc.message)  # upstream text may quote secrets
        error = exc
    except asyncio.CancelledError:
        error = _cancelled(ctx)
    except Exception as exc:
        log.exception(
            "unhandled error in %s (request %s)", ctx.dialect.endpoint, ctx.arrival.request_id
        )
        error = GatewayError(ErrorKind.GATEWAY_INTERNAL, f"internal error ({type(exc).__name__})")
    outcome = _outcome(svc, ctx, tries, tally, error, plan=plan)
    if hold is not None:
        await hold.close(outcome)
    if error is not None:
        await _answer(ctx, error)
    elif plan is not None and plan.keeper is not None and svc.cache is not None:
        await cache_stage.keep(svc.cache, ctx, plan, outcome)
    return outcome


def _cancelled(ctx: RequestContext) -> GatewayError:
    """Cancelled from outside: the client went away (the sink says so), or the server's
    shutdown deadline passed. Either way the request ends here, answered."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    if ctx.sink.gone:
        return disconnected()
    return shutting_down("the gateway shut down before the request finished; retry it")


def _outcome(
    svc: Services,
    ctx: RequestContext,
    tries: Attempts,
    tally: Tally,
    error: GatewayError | None,
    *,
    plan: cache_stage.Plan | None,
) -> Outcome:
    sink = ctx.sink
    partial = False
    if error is None:
        error = tries.inband
        partial = error is not None
    elif error.kind is not ErrorKind.CLIENT_DISCONNECTED and sink.started and not sink.ended:
        partial = True  # the client got part of the answer, then the error event
    dep = tries.dep
    micros = tally.cost_micros
    if micros is None and dep is not None and tries.model is not None:
        # An upstream was called but the answer was never priced (it failed, or the client
        # went away): what was counted, at the prices of the last deployment tried.
        micros = cost.cost(svc.pricer, dep, svc.prices.get(tries.model.name), tally.usage)
    # Built as the tuple it is (every field given, in order): a third cheaper than the
    # generated constructor's call. tests/unit/test_pipeline_outcome.py reads it by name.
    return _new(
        Outcome,
        (
            error,
            partial,
            tally.usage,
            micros,
            tries.count,
            tuple(tries.errors) if tries.errors else (),
            None if dep is None else dep.provider_name,
            None if dep is None else dep.key,
            None if dep is None else dep.upstream_model,
            tally.streamed,
            tally.ttft_ms,
            tally.upstream_ms,
            None if plan is None else plan.status,
            None,
        ),
    )


async def _answer(ctx: RequestContext, error: GatewayError) -> None:
    """Send the error: as the answer, or in-band when part of it went out already; nothing
    to a client that went away."""
    sink = ctx.sink
    if error.kind is ErrorKind.CLIENT_DISCONNECTED:
        return
    if not sink.started:
        await sink.error(error, ctx.dialect.error(error), ctx.base_headers)
    elif not sink.ended:
        await sink.end(ctx.dialect.stream_error(error))
