// LabelSelector: parses and evaluates the label-selector grammar of the Kubernetes API
// ("a=b,c!=d,e in (x,y),f notin (z),g,!h"), with the server's semantics: `!=` and `notin` also
// match objects that lack the key.
#include <algorithm>
#include <cctype>

#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {
namespace {

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool ValidToken(const std::string& s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

// Splits on commas that are not inside parentheses.
absl::StatusOr<std::vector<std::string>> SplitTopLevel(const std::string& text) {
  std::vector<std::string> parts;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) break;
    if (c == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (depth != 0) {
    return absl::InvalidArgumentError("unable to parse requirement: unbalanced parentheses in \"" +
                                      text + "\"");
  }
  parts.push_back(current);
  return parts;
}

// Parses "(a, b)" into its values.
absl::StatusOr<std::vector<std::string>> ParseSet(const std::string& text) {
  std::string t = Trim(text);
  if (t.size() < 2 || t.front() != '(' || t.back() != ')') {
    return absl::InvalidArgumentError(
        "unable to parse requirement: expected a set \"(a,b)\", got \"" + text + "\"");
  }
  std::vector<std::string> values;
  std::string inner = t.substr(1, t.size() - 2);
  size_t start = 0;
  while (true) {
    size_t comma = inner.find(',', start);
    std::string value =
        Trim(inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!ValidToken(value, true)) {
      return absl::InvalidArgumentError("invalid label value: \"" + value + "\"");
    }
    values.push_back(value);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

}  // namespace

absl::StatusOr<LabelSelector> LabelSelector::Parse(const std::string& text) {
  LabelSelector selector;
  if (Trim(text).empty()) return selector;
  auto parts = SplitTopLevel(text);
  if (!parts.ok()) return parts.status();
  for (const std::string& raw : *parts) {
    std::string part = Trim(raw);
    if (part.empty()) {
      return absl::InvalidArgumentError("unable to parse requirement: empty requirement in \"" +
                                        text + "\"");
    }
    Requirement req;
    size_t pos;
    if (part[0] == '!') {
      req.key = Trim(part.substr(1));
      req.op = Requirement::Op::kNotExists;
    } else if ((pos = part.find("!=")) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Requirement::Op::kNotIn;
      req.values = {Trim(part.substr(pos + 2))};
    } else if ((pos = part.find("==")) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Requirement::Op::kIn;
      req.values = {Trim(part.substr(pos + 2))};
    } else if ((pos = part.find('=')) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Requirement::Op::kIn;
      req.values = {Trim(part.substr(pos + 1))};
    } else if ((pos = part.find(" notin ")) != std::string::npos ||
               (pos = part.find(" notin(")) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Requirement::Op::kNotIn;
      auto values = ParseSet(part.substr(pos + 6));
      if (!values.ok()) return values.status();
      req.values = *values;
    } else if ((pos = part.find(" in ")) != std::string::npos ||
               (pos = part.find(" in(")) != std::string::npos) {
      req.key = Trim(part.substr(0, pos));
      req.op = Requirement::Op::kIn;
      auto values = ParseSet(part.substr(pos + 3));
      if (!values.ok()) return values.status();
      req.values = *values;
    } else {
      req.key = part;
      req.op = Requirement::Op::kExists;
    }
    if (!ValidToken(req.key, false)) {
      return absl::InvalidArgumentError("unable to parse requirement: invalid label key \"" +
                                        req.key + "\" in selector \"" + text + "\"");
    }
    for (const auto& v : req.values) {
      if (!ValidToken(v, true)) {
        return absl::InvalidArgumentError("invalid label value: \"" + v + "\" in selector \"" +
                                          text + "\"");
      }
    }
    selector.requirements_.push_back(std::move(req));
  }
  return selector;
}

bool LabelSelector::Matches(const nlohmann::json& labels) const {
  for (const auto& req : requirements_) {
    const nlohmann::json* value = nullptr;
    if (labels.is_object()) {
      auto it = labels.find(req.key);
      if (it != labels.end() && it->is_string()) value = &*it;
    }
    auto in_values = [&] {
      return value != nullptr && std::find(req.values.begin(), req.values.end(),
                                           value->get<std::string>()) != req.values.end();
    };
    switch (req.op) {
      case Requirement::Op::kExists:
        if (value == nullptr) return false;
        break;
      case Requirement::Op::kNotExists:
        if (value != nullptr) return false;
        break;
      case Requirement::Op::kIn:
        if (!in_values()) return false;
        break;
      case Requirement::Op::kNotIn:
        if (in_values()) return false;
        break;
    }
  }
  return true;
}

}  // namespace podlb::sandbox
