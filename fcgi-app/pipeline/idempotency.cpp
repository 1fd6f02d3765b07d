// Idempotency-Key around a write route: authenticate → claim → the route → store and commit.
#include "pipeline/idempotency.hpp"

#include "core/log.hpp"
#include "core/secrets.hpp"
#include "http/idempotency_key.hpp"
#include "pipeline/caller.hpp"

namespace music_api {

Result<void> RunIdempotent(const Request& request, const Route& route, RouteHandler handle, std::string_view trace_id,
                           PipelineContext& context, Response& response) {
  auto key = ParseIdempotencyKey(*request.idempotency_key);
  if (!key) return Fail(key.error());
  auto presented = ReadPresentedKey(request, context);
  if (!presented) return Fail(presented.error());
  auto caller = Authenticate(presented->key, presented->hash, route.organization_id, true, false, presented->now,
                             trace_id, context, response);
  // A route with no org in its path (a share link's save) judges the org itself: here, only the
  // key must hold (the org check's refusal is the route's to answer).
  const bool key_holds =
      caller || (!route.organization_id && caller.error().code == ErrorCode::kOrganizationAccessDenied);
  if (!key_holds) return Fail(caller.error());

  // The stored answer is sealed under the pepper, bound to its row (a share link's token is in it).
  const std::string row = presented->key.id + " " + std::string(*key);
  auto claim = context.database.BeginIdempotent(presented->key.id, *key, RequestFingerprint(request), trace_id);
  if (!claim) return Fail(claim.error());
  switch (claim->state) {
    case IdempotencyClaim::State::kInUse:
      return Fail(ErrorCode::kIdempotencyKeyInUse);
    case IdempotencyClaim::State::kReplay:
      if (!claim->same_request) return Fail(ApiError{ErrorCode::kIdempotencyKeyReused, {}, "Idempotency-Key", {}});
      if (auto body = OpenAnswer(context.pepper, row, claim->body)) {
        response.status = claim->status;
        response.body = std::move(*body);
        response.idempotent_replayed = true;
        return {};
      }
      Log("error", "idempotency_answer_unreadable", {{"trace_id", trace_id}, {"reason", "the pepper changed?"}});
      return Fail(ErrorCode::kInternalError);
    case IdempotencyClaim::State::kStarted:
      break;
  }
  auto done = handle(request, route, trace_id, context, response);
  if (!done || response.status < 200 || response.status >= 300) {
    context.database.AbandonIdempotent();
    return done;
  }
  // Not stored, not committed: the outcome is unknown to us, so the answer is 503 with
  // Retry-After, and the retry with this key either finds the stored answer or runs afresh.
  auto stored =
      context.database.FinishIdempotent(response.status, SealAnswer(context.pepper, row, response.body), trace_id);
  if (!stored) return Fail(stored.error());
  return {};
}

}  // namespace music_api
