// A reader for the Prometheus text exposition format (version 0.0.4), for tests that scrape
// /metrics and check values: enough of the format for what prometheus-cpp writes (comments,
// samples with optional labels, escaped label values, optional timestamps).
//
//   MetricsText m = MetricsText::Parse(body);
//   EXPECT_EQ(m.Value("donagate_mo_received_total", {{"link", "opa"}}), 3);
//   EXPECT_EQ(m.Sum("donagate_donations_vnd_charged_total", {{"campaign", "flood"}}), 30000);
//
// Header-only so that any test target can use it without a build change.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace donagate::testing {

struct MetricSample {
  std::string name;                           // as written, e.g. "x_bucket"
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

class MetricsText {
 public:
  // Parses `text`; lines that are not valid samples are collected in errors() (a well-formed
  // exposition has none).
  static MetricsText Parse(std::string_view text) {
    MetricsText out;
    size_t pos = 0;
    int line_number = 0;
    while (pos <= text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (end == text.size()) break;
        continue;
      }
      if (line.front() == '#') {
        out.ParseComment(line);
      } else if (!out.ParseSample(line)) {
        out.errors_.push_back("line " + std::to_string(line_number) + ": " + std::string(line));
      }
      if (end == text.size()) break;
    }
    return out;
  }

  const std::vector<MetricSample>& samples() const { return samples_; }
  const std::vector<std::string>& errors() const { return errors_; }
  // "# TYPE name counter" → types()["name"] == "counter".
  const std::map<std::string, std::string>& types() const { return types_; }

  // The sample with exactly these labels; nullopt when absent.
  std::optional<double> Value(std::string_view name,
                              const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples_) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }

  // Sum over the samples of `name` whose labels include every pair of `subset` (0 if none).
  double Sum(std::string_view name, const std::map<std::string, std::string>& subset = {}) const {
    double sum = 0;
    for (const auto& s : samples_) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : subset) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) {
          match = false;
          break;
        }
      }
      if (match) sum += s.value;
    }
    return sum;
  }

  // Number of samples named `name` (any labels).
  size_t Count(std::string_view name) const {
    size_t n = 0;
    for (const auto& s : samples_) n += s.name == name ? 1 : 0;
    return n;
  }

  // Metric family names: sample names with a histogram/summary's _bucket/_sum/_count
  // suffix folded into the family declared by # TYPE.
  std::set<std::string> FamilyNames() const {
    std::set<std::string> names;
    for (const auto& [name, type] : types_) names.insert(name);
    for (const auto& s : samples_) names.insert(FamilyOf(s.name));
    return names;
  }

  std::string FamilyOf(const std::string& sample_name) const {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (sample_name.size() > suffix.size() &&
          sample_name.compare(sample_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        const std::string base = sample_name.substr(0, sample_name.size() - suffix.size());
        auto it = types_.find(base);
        if (it != types_.end() && (it->second == "histogram" || it->second == "summary")) return base;
      }
    }
    return sample_name;
  }

 private:
  static bool IsNameChar(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
  }

  void ParseComment(std::string_view line) {
    constexpr std::string_view kType = "# TYPE ";
    if (line.substr(0, kType.size()) != kType) return;
    line.remove_prefix(kType.size());
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) return;
    types_[std::string(line.substr(0, space))] = std::string(line.substr(space + 1));
  }

  bool ParseSample(std::string_view line) {
    MetricSample sample;
    size_t i = 0;
    while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
    if (i == 0) return false;
    sample.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        const size_t key_start = i;
        while (i < line.size() && IsNameChar(line[i], i == key_start)) ++i;
        if (i == key_start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return false;
        std::string key(line.substr(key_start, i - key_start));
        i += 2;
        std::string value;
        bool closed = false;
        while (i < line.size()) {
          const char c = line[i++];
          if (c == '\\' && i < line.size()) {
            const char e = line[i++];
            value.push_back(e == 'n' ? '\n' : e);
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            value.push_back(c);
          }
        }
        if (!closed) return false;
        sample.labels[std::move(key)] = std::move(value);
      }
    }
    if (i >= line.size() || line[i] != ' ') return false;
    while (i < line.size() && line[i] == ' ') ++i;
    size_t value_end = line.find(' ', i);
    if (value_end == std::string_view::npos) value_end = line.size();
    const std::string value_text(line.substr(i, value_end - i));
    if (value_text == "+Inf") {
      sample.value = HUGE_VAL;
    } else if (value_text == "-Inf") {
      sample.value = -HUGE_VAL;
    } else {
      char* parse_end = nullptr;
      sample.value = std::strtod(value_text.c_str(), &parse_end);
      if (value_text.empty() || parse_end != value_text.c_str() + value_text.size()) return false;
    }
    samples_.push_back(std::move(sample));
    return true;
  }

  std::vector<MetricSample> samples_;
  std::vector<std::string> errors_;
  std::map<std::string, std::string> types_;
};

}  // namespace donagate::testing
