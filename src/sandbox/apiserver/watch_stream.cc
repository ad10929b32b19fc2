// Watch streaming of the API-server stand-in: a chunked HTTP/1.1 response with one JSON event
// per line, as the real server writes it, for `?watch=true` and the legacy /watch/ paths alike.
// Initial ADDED events when the client gave no resourceVersion (or "0"), bookmarks on request, a
// clean end after timeoutSeconds, and an in-stream ERROR event (410 Expired) for a version older
// than the retained history.
#include <chrono>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "sandbox/apiserver/api_handler.h"
#include "sandbox/apiserver/tables.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string EventLine(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}

}  // namespace

bool ApiHandler::Watch(const HttpRequest& request, const ResourceRoute& route,
                       HttpConnection& connection) {
  const ResourceType& type = *route.type;
  auto fail = [&](const ApiResponse& response) {
    return connection.WriteResponse(response.code, "application/json", response.body.dump(),
                                    request.keep_alive) &&
           request.keep_alive;
  };
  auto selector = LabelSelector::Parse(request.Query("labelSelector"));
  if (!selector.ok())
    return fail(StatusResponse(400, "BadRequest", std::string(selector.status().message())));
  FieldSelector fields;
  std::string error;
  if (!FieldSelector::Parse(request.Query("fieldSelector"), &fields, &error)) {
    return fail(StatusResponse(400, "BadRequest", error));
  }
  if (!route.name.empty()) {
    // A watch of one object (/watch/.../NAME) is the collection's watch narrowed to that name,
    // exactly as the real server treats the name; a field selector may only repeat it.
    if (fields.Empty()) {
      fields = FieldSelector::NameEquals(route.name);
    } else if (fields.RequiredName() != route.name) {
      return fail(StatusResponse(400, "BadRequest",
                                 "fieldSelector metadata.name doesn't match requested name"));
    }
  }
  std::string rv = request.Query("resourceVersion");
  uint64_t from = 0;
  if (!rv.empty() && !absl::SimpleAtoi(rv, &from)) {
    return fail(
        StatusResponse(400, "BadRequest", fmt::format("invalid resource version \"{}\"", rv)));
  }
  std::chrono::milliseconds duration = options_.default_watch_timeout;
  std::string timeout_text = request.Query("timeoutSeconds");
  int64_t timeout_seconds = 0;
  if (!timeout_text.empty()) {
    if (!absl::SimpleAtoi(timeout_text, &timeout_seconds) || timeout_seconds < 0) {
      return fail(StatusResponse(400, "BadRequest",
                                 fmt::format("invalid timeoutSeconds \"{}\"", timeout_text)));
    }
    if (timeout_seconds > 0) {
      duration =
          std::min<std::chrono::milliseconds>(duration, std::chrono::seconds(timeout_seconds));
    }
  }
  bool bookmarks = request.QueryBool("allowWatchBookmarks");
  bool table = request.Header("accept").find("as=Table") != std::string::npos;
  counters_.CountWatch(type.resource);

  // No version (or "0") means "the current state, then changes": synthetic ADDED events for what
  // exists now, then the watch continues from the list's version.
  std::vector<json> initial;
  if (from == 0) {
    auto list = store_.List(type.resource, route.ns, *selector);
    for (auto& item : list.items) {
      if (fields.Matches(item)) initial.push_back(std::move(item));
    }
    from = list.resource_version;
  }
  auto watcher = store_.Watch(type.resource, route.ns, *selector, from);
  if (!watcher.ok() && watcher.status().code() != absl::StatusCode::kOutOfRange) {
    return fail(StatusResponse(500, "InternalError", std::string(watcher.status().message())));
  }
  if (!connection.BeginChunked(200, "application/json")) return false;
  if (!watcher.ok()) {
    // The real server accepts the watch and reports the expiry in-stream.
    json status = StatusResponse(410, "Expired", std::string(watcher.status().message())).body;
    return connection.WriteChunk(EventLine("ERROR", status)) && connection.EndChunked() &&
           request.keep_alive;
  }
  bool columns_sent = false;
  auto encode = [&](const std::string& event_type, const json& object) {
    if (!table) return EventLine(event_type, object);
    json t = ToTable(type, {object}, !columns_sent, "");
    columns_sent = true;
    return EventLine(event_type, t);
  };
  for (const auto& object : initial) {
    if (!connection.WriteChunk(encode("ADDED", object))) return false;
  }

  uint64_t registration = supervisor_.Register(connection.fd(), watcher->get());
  bool healthy = true;
  const auto deadline = Clock::now() + duration;
  auto next_bookmark = Clock::now() + options_.bookmark_interval;
  while (healthy) {
    auto now = Clock::now();
    if (now >= deadline) break;
    auto wake = bookmarks ? std::min(deadline, next_bookmark) : deadline;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now) +
                std::chrono::milliseconds(1);
    std::optional<WatchEvent> event = (*watcher)->Next(wait);
    if (event) {
      if (fields.Matches(event->object))
        healthy = connection.WriteChunk(encode(event->type, event->object));
      continue;
    }
    now = Clock::now();
    if (bookmarks && now >= next_bookmark && now < deadline) {
      json object = {{"kind", type.kind},
                     {"apiVersion", type.ApiVersion()},
                     {"metadata",
                      {{"resourceVersion", std::to_string((*watcher)->DeliveredVersion())},
                       {"creationTimestamp", nullptr}}}};
      healthy = connection.WriteChunk(EventLine("BOOKMARK", object));
      next_bookmark = now + options_.bookmark_interval;
      continue;
    }
    if (now < deadline) break;  // closed: the client hung up or the server is stopping
  }
  supervisor_.Unregister(registration);
  // After a hang-up or stop the socket is gone; otherwise end the stream cleanly.
  return healthy && connection.EndChunked() && request.keep_alive;
}

}  // namespace podlb::sandbox
