#include "metrics/text_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace baton::metrics {
namespace {

std::string Escape(const std::string& s, bool label) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && label) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  return buf;
}

void AppendLabels(std::string& out, const Labels& labels) {
  if (labels.empty()) return;
  out += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += Escape(labels[i].second, true);
    out += '"';
  }
  out += '}';
}

}  // namespace

void TextWriter::Family(const std::string& name, const std::string& type, const std::string& help) {
  if (std::find(families_.begin(), families_.end(), name) != families_.end()) return;
  families_.push_back(name);
  out_ += "# HELP " + name + " " + Escape(help, false) + "\n";
  out_ += "# TYPE " + name + " " + type + "\n";
}

void TextWriter::Sample(const std::string& name, const Labels& labels, double value) {
  out_ += name;
  AppendLabels(out_, labels);
  out_ += ' ';
  out_ += Number(value);
  out_ += '\n';
}

void TextWriter::Histogram(const std::string& name, const Labels& labels,
                           const Histogram::Snapshot& h, double scale) {
  for (size_t i = 0; i <= h.bounds.size(); ++i) {
    Labels with = labels;
    with.emplace_back("le", i < h.bounds.size() ? Number(static_cast<double>(h.bounds[i]) * scale)
                                                : std::string("+Inf"));
    Sample(name + "_bucket", with, static_cast<double>(h.cumulative[i]));
  }
  Sample(name + "_sum", labels, static_cast<double>(h.sum) * scale);
  Sample(name + "_count", labels, static_cast<double>(h.cumulative.back()));
}

}  // namespace baton::metrics
