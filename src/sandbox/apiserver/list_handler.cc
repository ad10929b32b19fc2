// Lists of the API-server stand-in, chunked as the real server chunks them: `limit` caps a page,
// `metadata.continue` resumes after it, and every page of one list reads the snapshot of the
// first page (as etcd serves a range at a revision). A token older than the store's history gets
// 410 Expired with a token that finishes the list at the latest version, as the real server does.
#include <cstdint>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "sandbox/apiserver/api_handler.h"
#include "sandbox/apiserver/continue_token.h"
#include "sandbox/apiserver/tables.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// The real server's words (k8s.io/apiserver storage: inconsistentContinue).
constexpr char kInconsistentContinue[] =
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.";

}  // namespace

ApiResponse ApiHandler::List(const HttpRequest& request, const ResourceRoute& route) {
  if (options_.before_list) options_.before_list(route.type->resource, request.Query("continue"));
  auto selector = LabelSelector::Parse(request.Query("labelSelector"));
  if (!selector.ok())
    return StatusResponse(400, "BadRequest", std::string(selector.status().message()));
  FieldSelector fields;
  std::string error;
  if (!FieldSelector::Parse(request.Query("fieldSelector"), &fields, &error)) {
    return StatusResponse(400, "BadRequest", error);
  }
  ResourceStore::PageRequest page_request;
  page_request.ns = route.ns;
  page_request.selector = *selector;
  if (!fields.Empty()) {
    page_request.filter = [&fields](const json& object) { return fields.Matches(object); };
  }

  const std::string limit_text = request.Query("limit");
  int64_t limit = 0;
  if (!limit_text.empty()) {
    // The real server answers "abc" with Go's strconv error; it takes a negative limit as "no
    // limit", which the stand-in refuses so a client bug shows up here first.
    if (!absl::SimpleAtoi(limit_text, &limit)) {
      return StatusResponse(
          400, "BadRequest",
          fmt::format("invalid limit \"{}\": strconv.ParseInt: parsing \"{}\": invalid syntax; "
                      "limit must be a non-negative integer",
                      limit_text, limit_text));
    }
    if (limit < 0) {
      return StatusResponse(400, "BadRequest",
                            fmt::format("invalid limit \"{}\": limit must be a non-negative "
                                        "integer (0 or absent: no limit)",
                                        limit_text));
    }
  }
  page_request.limit = static_cast<size_t>(limit);

  const std::string rv = request.Query("resourceVersion");
  const std::string match = request.Query("resourceVersionMatch");
  const std::string continue_token = request.Query("continue");
  if (!match.empty() && match != "Exact" && match != "NotOlderThan") {
    return StatusResponse(422, "Invalid",
                          fmt::format("ListOptions.meta.k8s.io \"\" is invalid: "
                                      "resourceVersionMatch: Unsupported value: \"{}\": supported "
                                      "values: \"Exact\", \"NotOlderThan\", \"\"",
                                      match));
  }
  std::optional<ContinuePosition> position;
  if (!continue_token.empty()) {
    if (!rv.empty() && rv != "0") {
      return StatusResponse(400, "BadRequest",
                            "specifying resource version is not allowed when using continue");
    }
    auto decoded = DecodeContinue(continue_token);
    if (!decoded.ok()) {
      return StatusResponse(
          400, "BadRequest",
          fmt::format("invalid continue token: {}", std::string(decoded.status().message())));
    }
    position = *decoded;
    page_request.start = position->start;
    if (position->resource_version > 0) {
      page_request.version = static_cast<uint64_t>(position->resource_version);
    }
  } else if (!rv.empty() && rv != "0") {
    uint64_t version = 0;
    if (!absl::SimpleAtoi(rv, &version)) {
      return StatusResponse(400, "BadRequest", fmt::format("invalid resource version \"{}\"", rv));
    }
    // An exact version is read from the history; so is any version with a limit and no match
    // (the legacy meaning). Otherwise "not older than": the current state, unless the version is
    // past the retained history (410, like a compacted etcd).
    if (match == "Exact" || (match.empty() && limit > 0)) {
      page_request.version = version;
    } else {
      auto probe = store_.Watch(route.type->resource, route.ns, *selector, version);
      if (!probe.ok()) return FromStatus(probe.status(), route, "");
    }
  }

  auto page = store_.ListPage(route.type->resource, page_request);
  if (!page.ok()) {
    if (absl::IsOutOfRange(page.status()) && position) {
      ApiResponse expired = StatusResponse(410, "Expired", kInconsistentContinue);
      expired.body["metadata"]["continue"] = EncodeContinueAt(position->start, -1);
      return expired;
    }
    if (absl::IsInvalidArgument(page.status())) {
      if (position) {
        return StatusResponse(400, "BadRequest",
                              fmt::format("invalid continue token: continue key is not valid: {}",
                                          std::string(page.status().message())));
      }
      // The real server's answer to a version it has not reached.
      return StatusResponse(
          504, "Timeout",
          fmt::format("Too large resource version: {}, current: {}", rv, store_.CurrentVersion()));
    }
    return FromStatus(page.status(), route, "");
  }
  counters_.CountList(route.type->resource);

  const std::string version = std::to_string(page->resource_version);
  json metadata = {{"resourceVersion", version}};
  if (page->more) {
    metadata["continue"] = EncodeContinue(page->last_key, page->resource_version);
    // Counted over every object, so only meaningful (and only sent) without selectors.
    if (selector->Empty() && fields.Empty()) {
      metadata["remainingItemCount"] = page->remaining;
    }
  }
  if (WantsTable(request)) {
    json table = ToTable(*route.type, page->items, true, version);
    table["metadata"] = metadata;
    return {200, std::move(table)};
  }
  return {200, json{{"kind", route.type->kind + "List"},
                    {"apiVersion", route.type->ApiVersion()},
                    {"metadata", std::move(metadata)},
                    {"items", std::move(page->items)}}};
}

}  // namespace podlb::sandbox
