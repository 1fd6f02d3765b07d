// Collections and share links: the caller's own records, read and edited through Database::Query.
#include <charconv>
#include <stdexcept>

#include "db/database.hpp"
#include "db/statements.hpp"

namespace music_api {
namespace {

using TextRow = std::vector<std::optional<std::string>>;

int64_t Number(const std::optional<std::string>& text) {
  if (!text) throw std::runtime_error("a statement answered NULL where a number belongs");
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc() || end != text->data() + text->size()) throw std::runtime_error("not a number: " + *text);
  return n;
}

bool Flag(const std::optional<std::string>& text) { return text && *text == "1"; }

std::optional<int64_t> OptionalNumber(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return Number(text);
}

// Columns from `at`: id, name, description, cover_track_id, cover_image_url, track_count,
// created_at, updated_at (MUSIC_API_SQL_COLLECTION_COLUMNS). nullopt when the id is NULL.
std::optional<CollectionRecord> CollectionAt(const TextRow& row, size_t at) {
  if (!row.at(at)) return std::nullopt;
  return CollectionRecord{
      *row[at],       row.at(at + 1).value_or(""),    row.at(at + 2),         row.at(at + 3),
      row.at(at + 4), OptionalNumber(row.at(at + 5)), Number(row.at(at + 6)), Number(row.at(at + 7))};
}

using TextParams = std::vector<std::pair<std::string_view, std::optional<std::string>>>;  // Database::TextParams

TextParams FieldParams(const CollectionFields& fields) {
  auto set = [](bool is_set) { return std::optional<std::string>(is_set ? "1" : "0"); };
  auto value = [](const std::optional<std::optional<std::string>>& field) {
    return field ? *field : std::optional<std::string>();
  };
  return {{"set_name", set(fields.name.has_value())},
          {"name", fields.name},
          {"set_description", set(fields.description.has_value())},
          {"description", value(fields.description)},
          {"set_cover", set(fields.cover_track_id.has_value())},
          {"track", value(fields.cover_track_id)},
          {"set_image", set(fields.cover_image_url.has_value())},
          {"image", value(fields.cover_image_url)}};
}

std::optional<std::string> Text(std::string_view s) { return std::string(s); }

// A create refused by its statement's quota check (010_quotas.sql): the statement asks only once
// the caller, and what is created, are fine, so this is the answer's only reason.
ApiError QuotaReached(std::string_view limit, int value, std::string_view what) {
  return ApiError::Quota(std::string(limit), "at most " + std::to_string(value) + " " + std::string(what) +
                                                 " per user (" + std::string(limit) + ")");
}

}  // namespace

Result<CollectionList> Database::ListCollections(const CheckedCaller& caller, int limit, int64_t offset,
                                                 std::string_view trace_id) {
  auto rows = Query("list_collections", sql::kListCollections, &caller,
                    {{"limit", std::to_string(limit)}, {"offset", std::to_string(offset)}}, Target::kRead, trace_id);
  if (!rows) return Fail(rows.error());
  CollectionList list{Flag((*rows)[0][0]), {}};
  for (const auto& row : *rows) {
    if (auto c = CollectionAt(row, 2)) list.items.push_back(std::move(*c));
  }
  return list;
}

Result<CollectionOutcome> Database::GetCollection(const CheckedCaller& caller, std::string_view collection_id,
                                                  std::string_view trace_id) {
  auto rows = Query("get_collection", sql::kGetCollection, &caller, {{"collection", Text(collection_id)}},
                    Target::kRead, trace_id);
  if (!rows) return Fail(rows.error());
  const TextRow& row = (*rows)[0];
  auto c = CollectionAt(row, 2);
  return CollectionOutcome{Flag(row[0]), c.has_value(), true, std::move(c)};
}

Result<CollectionOutcome> Database::CreateCollection(const CheckedCaller& caller, std::string_view new_id,
                                                     const CollectionFields& fields, std::string_view trace_id) {
  TextParams params{{"collection", Text(new_id)},
                    {"name", fields.name},
                    {"description", fields.description.value_or(std::nullopt)},
                    {"track", fields.cover_track_id.value_or(std::nullopt)},
                    {"image", fields.cover_image_url.value_or(std::nullopt)},
                    {"quota", std::to_string(max_collections_per_user_)}};
  const bool keyed = claim_.has_value();
  // A run whose insert waited for its own first attempt (still committing when the session broke)
  // does nothing and cannot see that row in its snapshot: run again, it does.
  for (int attempt = 0;; ++attempt) {
    auto rows = Query("create_collection", sql::kCreateCollection, &caller, params, Target::kWrite, trace_id);
    if (!rows) return Fail(CreateFailure(rows.error(), keyed));
    const TextRow& row = (*rows)[0];
    if (!Flag(row.at(3))) {
      return Fail(QuotaReached("max_collections_per_user", max_collections_per_user_, "collections"));
    }
    auto c = CollectionAt(row, 4);
    CollectionOutcome outcome{Flag(row[0]), c.has_value(), Flag(row[2]), std::move(c)};
    if (outcome.collection || !outcome.auth_ok || !outcome.cover_ok || keyed || attempt == 2) return outcome;
  }
}

ApiError Database::CreateFailure(const ApiError& error, bool keyed) const {
  // With a key, the client's retry is exact whatever happened: 503 with Retry-After stands.
  if (keyed || !write_outcome_unknown_ || error.code != ErrorCode::kServiceUnavailable) return error;
  return ApiError::Of(ErrorCode::kWriteOutcomeUnknown);
}

Result<CollectionOutcome> Database::UpdateCollection(const CheckedCaller& caller, std::string_view collection_id,
                                                     const CollectionFields& fields, std::string_view trace_id) {
  TextParams params = FieldParams(fields);
  params.emplace_back("collection", Text(collection_id));
  auto rows = Query("update_collection", sql::kUpdateCollection, &caller, params, Target::kWrite, trace_id);
  if (!rows) return Fail(rows.error());
  const TextRow& row = (*rows)[0];
  return CollectionOutcome{Flag(row[0]), Flag(row[2]), Flag(row[3]), CollectionAt(row, 4)};
}

Result<DeletedOutcome> Database::DeleteCollection(const CheckedCaller& caller, std::string_view collection_id,
                                                  std::string_view trace_id) {
  // Like DeleteTrack: a delete that waited for another one of the same collection sees neither the
  // row nor, in its older snapshot, the tombstone: once more, it does.
  for (int attempt = 0;; ++attempt) {
    auto rows = Query("delete_collection", sql::kDeleteCollection, &caller, {{"collection", Text(collection_id)}},
                      Target::kWrite, trace_id);
    if (!rows) return Fail(rows.error());
    DeletedOutcome outcome{Flag((*rows)[0][0]), Number((*rows)[0][2]) > 0};
    if (outcome.found || !outcome.auth_ok || attempt == 1) return outcome;
  }
}

Result<CollectionEntries> Database::ListCollectionEntries(const CheckedCaller& caller, std::string_view collection_id,
                                                          int limit, int64_t offset, std::string_view trace_id) {
  auto rows =
      Query("collection_entries", sql::kCollectionEntries, &caller,
            {{"collection", Text(collection_id)}, {"limit", std::to_string(limit)}, {"offset", std::to_string(offset)}},
            Target::kRead, trace_id);
  if (!rows) return Fail(rows.error());
  CollectionEntries entries{Flag((*rows)[0][0]), Flag((*rows)[0][2]), {}};
  for (const auto& row : *rows) {
    if (row.at(3)) entries.items.push_back({*row[3], Number(row.at(4)), Number(row.at(5))});
  }
  return entries;
}

Result<EntryOutcome> Database::AddToCollection(const CheckedCaller& caller, std::string_view collection_id,
                                               std::string_view track_id, std::string_view trace_id) {
  auto rows = Query("collection_add", sql::kCollectionAdd, &caller,
                    {{"collection", Text(collection_id)}, {"track", Text(track_id)}}, Target::kWrite, trace_id);
  if (!rows) return Fail(rows.error());
  return EntryOutcome{Flag((*rows)[0][0]), (*rows)[0][2]};
}

Result<EntryOutcome> Database::RemoveFromCollection(const CheckedCaller& caller, std::string_view collection_id,
                                                    std::string_view track_id, std::string_view trace_id) {
  auto rows = Query("collection_remove", sql::kCollectionRemove, &caller,
                    {{"collection", Text(collection_id)}, {"track", Text(track_id)}}, Target::kWrite, trace_id);
  if (!rows) return Fail(rows.error());
  return EntryOutcome{Flag((*rows)[0][0]), (*rows)[0][2]};
}

Result<EntryOutcome> Database::ReorderCollection(const CheckedCaller& caller, std::string_view collection_id,
                                                 const std::vector<std::string>& track_ids, std::string_view trace_id) {
  std::string joined;
  for (const auto& id : track_ids) {
    if (!joined.empty()) joined.push_back(',');
    joined += id;
  }
  auto rows = Query("collection_reorder", sql::kCollectionReorder, &caller,
                    {{"collection", Text(collection_id)}, {"ids", joined}}, Target::kWrite, trace_id);
  if (!rows) return Fail(rows.error());
  return EntryOutcome{Flag((*rows)[0][0]), (*rows)[0][2]};
}

Result<ShareOutcome> Database::CreateShare(const CheckedCaller& caller, std::string_view track_id,
                                           std::string_view new_id, std::string_view token_hash,
                                           std::string_view visibility, std::optional<int> expires_in_days,
                                           std::string_view trace_id) {
  std::optional<std::string> days;
  if (expires_in_days) days = std::to_string(*expires_in_days);
  const bool keyed = claim_.has_value();
  auto rows = Query("create_share", sql::kCreateShare, &caller,
                    {{"track", Text(track_id)},
                     {"share", Text(new_id)},
                     {"token_hash", Text(token_hash)},
                     {"visibility", Text(visibility)},
                     {"days", days},
                     {"quota", std::to_string(max_share_links_per_user_)}},
                    Target::kWrite, trace_id);
  if (!rows) return Fail(CreateFailure(rows.error(), keyed));
  const TextRow& row = (*rows)[0];
  if (!Flag(row.at(2))) {
    return Fail(QuotaReached("max_share_links_per_user", max_share_links_per_user_, "live share links"));
  }
  ShareOutcome outcome{Flag(row[0]), std::nullopt};
  if (row.at(3)) {
    outcome.link = ShareLink{*row[3], row.at(4).value_or(""), OptionalNumber(row.at(5)), Number(row.at(6))};
  }
  return outcome;
}

Result<DeletedOutcome> Database::RevokeShare(const CheckedCaller& caller, std::string_view share_id,
                                             std::string_view trace_id) {
  auto rows = Query("revoke_share", sql::kRevokeShare, &caller, {{"share", Text(share_id)}}, Target::kWrite, trace_id);
  if (!rows) return Fail(rows.error());
  return DeletedOutcome{Flag((*rows)[0][0]), Number((*rows)[0][2]) > 0};
}

Result<std::optional<ResolvedShare>> Database::ResolveShare(std::string_view token_hash, std::string_view trace_id) {
  auto rows =
      Query("resolve_share", sql::kResolveShare, nullptr, {{"token_hash", Text(token_hash)}}, Target::kRead, trace_id);
  if (!rows) return Fail(rows.error());
  const TextRow& row = (*rows)[0];
  if (!row.at(2) || !row.at(7)) return std::optional<ResolvedShare>();
  ResolvedShare share;
  share.link_id = *row[2];
  share.org_id = row.at(3).value_or("");
  share.target_type = row.at(4).value_or("");
  share.visibility = row.at(5).value_or("");
  share.expires_at = OptionalNumber(row.at(6));
  share.track_deleted = Flag(row.at(8));
  share.track.Resize(1);
  share.track.id[0] = *row[7];
  share.track.title_null.assign(1, !row.at(9));
  share.track.title[0] = row.at(9).value_or("");
  share.track.engine[0] = row.at(10).value_or("");
  share.track.mode[0] = row.at(11).value_or("");
  share.track.duration_null.assign(1, !row.at(12));
  share.track.duration[0] = row.at(12) ? std::stod(*row[12]) : 0;
  share.track.instrumental[0] = Flag(row.at(13));
  share.track.licence_class[0] = row.at(14).value_or("");
  share.master_file = row.at(15);
  return std::optional<ResolvedShare>(std::move(share));
}

Result<SharedSaveOutcome> Database::SaveShared(const CheckedCaller& caller, std::string_view token_hash,
                                               std::string_view trace_id) {
  // Like SaveTrack: a save that raced another's INSERT sees no entry in its snapshot; again, it does.
  for (int attempt = 0;; ++attempt) {
    auto rows =
        Query("save_shared", sql::kSaveShared, &caller, {{"token_hash", Text(token_hash)}}, Target::kWrite, trace_id);
    if (!rows) return Fail(rows.error());
    const TextRow& row = (*rows)[0];
    SharedSaveOutcome outcome{Flag(row[0]), std::nullopt, {}, std::nullopt};
    if (row.at(2)) {
      outcome.entry = LibraryEntry{*row[2], row.at(4).value_or(""), Number(row.at(6))};
      outcome.track_id = row.at(3).value_or("");
      outcome.share_link_id = row.at(5);
    }
    const bool live = Number(row.at(7)) > 0;
    if (outcome.entry || !live || !outcome.auth_ok || attempt == 2) return outcome;
  }
}

}  // namespace music_api
