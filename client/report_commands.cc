// report compliance, recall lookback, stock: what a clinic manager reads (issue 5, items 2 and 3).
//
// The compliance report comes as a table (text), JSON, CSV or one self-contained HTML file: no
// script, no network, no external fonts; charts are inline SVG.
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/labels.h"
#include "client/numbers.h"
#include "client/output.h"
#include "steritrack/v1/report.grpc.pb.h"

namespace steritrack::cli {

bool ParseDay(const std::string& text, v1::Date* out) {
  absl::CivilDay day;
  if (text.size() != 10 || !absl::ParseCivilTime(text, &day)) return false;
  out->set_year(static_cast<int32_t>(day.year()));
  out->set_month(day.month());
  out->set_day(day.day());
  return true;
}

namespace {

using ReportStub = v1::ReportService::Stub;

// One command's connection to the ReportService through a Session (deadline, actor, retries).
class ReportDesk {
 public:
  explicit ReportDesk(const Globals& g)
      : g_(g),
        out_(g.json, std::cout, std::cerr),
        session_(SessionFor(g)),
        stub_(v1::ReportService::NewStub(session_.connection().channel())) {}

  template <typename Method, typename Request, typename Response>
  grpc::Status Call(Method method, const Request& req, Response* resp) {
    return session_.Call(
        [&](grpc::ClientContext* ctx) { return ((*stub_).*method)(ctx, req, resp); });
  }
  Output& out() { return out_; }
  int Fail(const grpc::Status& status) { return out_.Fail(status, Kind::kRead, g_.server); }

 private:
  const Globals& g_;
  Output out_;
  Session session_;
  std::unique_ptr<ReportStub> stub_;
};

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::TimeZone ZoneOf(const std::string& name) {
  absl::TimeZone zone = absl::UTCTimeZone();
  if (!name.empty() && !absl::LoadTimeZone(name, &zone)) zone = absl::UTCTimeZone();
  return zone;
}

std::string InZone(const google::protobuf::Timestamp& t, absl::TimeZone zone) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%d %H:%M", ToTime(t), zone);
}

absl::CivilDay DayOf(const v1::Date& d) { return absl::CivilDay(d.year(), d.month(), d.day()); }

std::string FactsText(const v1::ComplianceException& e, const std::string& separator) {
  std::string out;
  for (const auto& f : e.record()) {
    if (!out.empty()) out += separator;
    out += f.name() + "=" + f.value();
  }
  return out;
}

std::string CompliantWord(const v1::ComplianceReport& r) { return r.compliant() ? "YES" : "NO"; }

std::string LimitText(const v1::ComplianceReport& r) {
  const int64_t minutes = r.disposal_limit().seconds() / 60;
  if (minutes % 60 == 0) return std::to_string(minutes / 60) + " h";
  return std::to_string(minutes) + " min";
}

std::string AuditTrailText(const v1::ComplianceReport& r) {
  const auto& a = r.audit_trail();
  if (a.intact())
    return "Audit trail verified intact: " + std::to_string(a.entry_count()) + " entries";
  return "Audit trail BROKEN at entry " + std::to_string(a.first_bad_sequence()) + ": " +
         a.problem() + " (" + std::to_string(a.entry_count()) + " entries verified before it)";
}

std::string FollowedText(const v1::Refusal& f) {
  if (f.followed_by().empty()) return "nothing followed yet";
  std::string out;
  for (const auto& s : f.followed_by()) out += (out.empty() ? "" : "; ") + s;
  return out;
}

// ---- table

std::string ReportTable(const v1::ComplianceReport& r) {
  const absl::TimeZone zone = ZoneOf(r.time_zone());
  std::ostringstream t;
  t << "Compliance report " << FormatDate(r.from_date()) << " to " << FormatDate(r.to_date())
    << " (exclusive), time zone " << r.time_zone() << ", generated "
    << InZone(r.generate_time(), zone) << "\n";
  t << "Compliant: " << CompliantWord(r) << " — " << r.exceptions_size() << " exception(s)";
  if (r.unavailable_checks_size() > 0) {
    t << "; not checked: ";
    for (int i = 0; i < r.unavailable_checks_size(); ++i) {
      t << (i ? ", " : "") << r.unavailable_checks(i).name();
    }
  }
  t << "\n" << AuditTrailText(r) << "\n\n";
  t << "Exceptions\n";
  if (r.exceptions().empty()) t << "  none\n";
  for (const auto& e : r.exceptions()) {
    t << "  " << InZone(e.time(), zone) << "  " << e.kind_name() << "  " << e.summary() << "\n";
    t << "      " << FactsText(e, "  ") << "\n";
  }
  t << "\nRecalls in the period\n";
  if (r.recalls().empty()) t << "  none\n";
  for (const auto& rc : r.recalls()) {
    t << "  lot " << rc.lot().lot() << " of " << rc.lot().gtin() << " recalled "
      << InZone(rc.lot().state_change_time(), zone) << ": " << rc.lot().state_reason() << " — "
      << rc.uses_size() << " use(s)\n";
    for (const auto& u : rc.uses()) {
      t << "      " << u.serial() << "  treatment " << u.treatment().id() << "  room "
        << u.treatment().room() << "  client " << u.treatment().client_ref() << "  "
        << InZone(u.open_time(), zone) << "\n";
    }
  }
  t << "\nRefused openings in the period\n";
  if (r.refusals().empty()) t << "  none\n";
  for (const auto& f : r.refusals()) {
    t << "  " << InZone(f.time(), zone) << "  #" << f.sequence() << "  treatment "
      << f.treatment_id() << "  " << f.reason() << "  by " << f.actor()
      << (f.overridden() ? "  OVERRIDDEN" : "") << "\n";
    t << "      " << f.detail() << "\n";
    t << "      then: " << FollowedText(f) << "\n";
  }
  t << "\nStock alerts in the period (par levels)\n";
  if (r.stock_alerts().empty()) t << "  none\n";
  for (const auto& a : r.stock_alerts()) {
    t << "  " << InZone(a.time(), zone) << "  #" << a.sequence() << "  " << a.action() << "  "
      << a.detail() << "\n";
  }
  const auto& tot = r.totals();
  t << "\nTotals\n";
  t << "  treatments           " << tot.treatments() << "\n";
  t << "  cartridges opened    " << tot.cartridges_opened() << "\n";
  t << "  cartridges disposed  " << tot.cartridges_disposed() << "\n";
  t << "  loads run            " << tot.loads_run() << "\n";
  t << "  loads released       " << tot.loads_released() << "\n";
  t << "  refused openings     " << tot.open_refusals() << "\n";
  t << "  went below par       " << tot.stock_below_par() << "\n";
  t << "  disposal limit       " << LimitText(r) << "\n";
  for (const auto& c : tot.exceptions_by_kind()) {
    t << "  " << c.kind_name()
      << std::string(c.kind_name().size() < 28 ? 28 - c.kind_name().size() : 1, ' ') << c.count()
      << "\n";
  }
  t << "\nNot checked\n";
  if (r.unavailable_checks().empty()) t << "  none: every check was performed\n";
  for (const auto& c : r.unavailable_checks()) t << "  " << c.name() << ": " << c.reason() << "\n";
  return t.str();
}

// ---- CSV (RFC 4180 quoting)

std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string ReportCsv(const v1::ComplianceReport& r) {
  std::ostringstream t;
  t << "kind,time,summary,record\r\n";
  for (const auto& e : r.exceptions()) {
    t << Csv(e.kind_name()) << "," << Csv(Rfc3339Utc(e.time())) << "," << Csv(e.summary()) << ","
      << Csv(FactsText(e, "; ")) << "\r\n";
  }
  // Not exceptions: the audit-trail verification and each refused opening, for the record.
  const auto& a = r.audit_trail();
  t << "AUDIT_TRAIL," << Csv(Rfc3339Utc(r.generate_time())) << "," << Csv(AuditTrailText(r)) << ","
    << Csv("intact=" + std::string(a.intact() ? "true" : "false") +
           "; entries=" + std::to_string(a.entry_count()) +
           "; first_bad_seq=" + std::to_string(a.first_bad_sequence()) + "; problem=" + a.problem())
    << "\r\n";
  for (const auto& f : r.refusals()) {
    t << "REFUSAL," << Csv(Rfc3339Utc(f.time())) << "," << Csv(f.detail()) << ","
      << Csv("seq=" + std::to_string(f.sequence()) +
             "; treatment=" + std::to_string(f.treatment_id()) + "; reason=" + f.reason() +
             "; actor=" + f.actor() + "; overridden=" + (f.overridden() ? "true" : "false") +
             "; followed_by=" + FollowedText(f))
      << "\r\n";
  }
  return t.str();
}

// ---- HTML

std::string Esc(const std::string& s) { return XmlEscape(s); }

const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// A bar chart as inline SVG: one bar per label, stacked by series. `values[label][series]`.
std::string BarChart(const std::string& id, const std::string& title,
                     const std::vector<std::string>& labels, const std::vector<std::string>& series,
                     const std::map<std::string, std::map<std::string, int64_t>>& values) {
  const int width = 720, height = 240, left = 40, bottom = 50, top = 24;
  int64_t max_total = 1;
  for (const auto& label : labels) {
    int64_t total = 0;
    if (auto it = values.find(label); it != values.end()) {
      for (const auto& [s, v] : it->second) total += v;
    }
    max_total = std::max(max_total, total);
  }
  std::ostringstream svg;
  svg << "<figure><h3>" << Esc(title) << "</h3><svg id=\"" << id << "\" role=\"img\" aria-label=\""
      << Esc(title) << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
      << height << "\" viewBox=\"0 0 " << width << " " << height << "\">";
  svg << "<title>" << Esc(title) << "</title>";
  const int plot_h = height - bottom - top;
  const int plot_w = width - left - 10;
  svg << "<line x1=\"" << left << "\" y1=\"" << top + plot_h << "\" x2=\"" << left + plot_w
      << "\" y2=\"" << top + plot_h << "\" stroke=\"#333\"/>";
  svg << "<text x=\"" << left - 4 << "\" y=\"" << top + 4
      << "\" font-size=\"10\" text-anchor=\"end\">" << max_total << "</text>";
  svg << "<text x=\"" << left - 4 << "\" y=\"" << top + plot_h
      << "\" font-size=\"10\" text-anchor=\"end\">0</text>";
  if (labels.empty()) {
    svg << "<text x=\"" << width / 2 << "\" y=\"" << height / 2
        << "\" text-anchor=\"middle\" font-size=\"14\">no data in this period</text>";
  }
  const double slot = labels.empty() ? 0 : static_cast<double>(plot_w) / labels.size();
  const double bar_w = std::max(1.0, slot * 0.7);
  for (size_t i = 0; i < labels.size(); ++i) {
    const double x = left + slot * i + (slot - bar_w) / 2;
    double y = top + plot_h;
    auto it = values.find(labels[i]);
    for (size_t s = 0; s < series.size(); ++s) {
      int64_t v = 0;
      if (it != values.end()) {
        if (auto jt = it->second.find(series[s]); jt != it->second.end()) v = jt->second;
      }
      if (v == 0) continue;
      const double h = static_cast<double>(v) * plot_h / max_total;
      y -= h;
      svg << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << bar_w << "\" height=\"" << h
          << "\" fill=\"" << kPalette[s % 10] << "\"><title>" << Esc(labels[i]) << " "
          << Esc(series[s]) << ": " << v << "</title></rect>";
    }
    // Label every bar when few, else about twelve of them.
    const size_t step = std::max<size_t>(1, labels.size() / 12);
    if (i % step == 0) {
      svg << "<text x=\"" << x + bar_w / 2 << "\" y=\"" << top + plot_h + 14
          << "\" font-size=\"10\" text-anchor=\"middle\">" << Esc(labels[i]) << "</text>";
    }
  }
  // Legend.
  double lx = left;
  for (size_t s = 0; s < series.size(); ++s) {
    svg << "<rect x=\"" << lx << "\" y=\"" << height - 16 << "\" width=\"10\" height=\"10\" fill=\""
        << kPalette[s % 10] << "\"/><text x=\"" << lx + 14 << "\" y=\"" << height - 7
        << "\" font-size=\"11\">" << Esc(series[s]) << "</text>";
    lx += 24 + 7 * static_cast<double>(series[s].size());
  }
  svg << "</svg></figure>\n";
  return svg.str();
}

std::string ReportHtml(const v1::ComplianceReport& r, const v1::Stock* stock) {
  const absl::TimeZone zone = ZoneOf(r.time_zone());
  const std::string period = FormatDate(r.from_date()) + " to " + FormatDate(r.to_date());
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>steritrack compliance report " << Esc(period) << "</title>\n<style>"
    << "body{font-family:sans-serif;margin:2em;color:#222;max-width:60em}"
    << "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    << "th,td{border:1px solid #bbb;padding:0.25em 0.5em;text-align:left;vertical-align:top;"
       "font-size:0.9em}"
    << "th{background:#eee}.verdict{font-size:1.6em;font-weight:bold;padding:0.4em 0.6em;"
       "display:inline-block}"
    << ".yes{background:#d6f5d6;color:#145214}.no{background:#f8d4d4;color:#7a1010}"
    << ".note{color:#555}figure{margin:0 0 1.5em}figcaption{font-size:0.9em;color:#555}"
    << "@media print{body{margin:0}}"
    << "</style></head><body>\n";
  h << "<h1>Compliance report</h1>\n<p>Period <b>" << Esc(period)
    << "</b> (the last day excluded), time zone " << Esc(r.time_zone()) << ". Generated "
    << Esc(InZone(r.generate_time(), zone)) << ". Disposal limit " << Esc(LimitText(r))
    << ".</p>\n";

  // Summary: what a manager reads in a minute.
  h << "<section id=\"summary\"><h2>Summary</h2>\n";
  h << "<p class=\"verdict " << (r.compliant() ? "yes" : "no")
    << "\" id=\"verdict\">Compliant: " << CompliantWord(r) << "</p>\n";
  if (r.audit_trail().intact()) {
    h << "<p class=\"audit yes\" id=\"audit-trail\">Audit trail verified intact: "
      << r.audit_trail().entry_count() << " entries</p>\n";
  } else {
    h << "<p class=\"audit no\" id=\"audit-trail\" style=\"color:#b00000;font-weight:bold\">"
      << "Audit trail BROKEN at entry " << r.audit_trail().first_bad_sequence() << ": "
      << Esc(r.audit_trail().problem()) << "</p>\n";
  }
  h << "<p>" << r.exceptions_size() << " exception(s) in the checks performed.";
  if (r.unavailable_checks_size() > 0) {
    h << " Not checked by this version:";
    for (int i = 0; i < r.unavailable_checks_size(); ++i) {
      h << (i ? "," : "") << " " << Esc(r.unavailable_checks(i).name());
    }
    h << " (see the end of this report).";
  }
  h << "</p>\n<table id=\"exceptions-by-kind\"><tr><th>Exception</th><th>Count</th></tr>\n";
  for (const auto& c : r.totals().exceptions_by_kind()) {
    h << "<tr><td>" << Esc(c.kind_name()) << "</td><td>" << c.count() << "</td></tr>\n";
  }
  h << "</table>\n";
  const auto& tot = r.totals();
  h << "<table id=\"totals\"><tr><th>Treatments</th><th>Cartridges opened</th>"
    << "<th>Cartridges disposed</th><th>Loads run</th><th>Loads released</th><th>Recalls</th>"
    << "<th>Refused openings</th></tr>"
    << "<tr><td>" << tot.treatments() << "</td><td>" << tot.cartridges_opened() << "</td><td>"
    << tot.cartridges_disposed() << "</td><td>" << tot.loads_run() << "</td><td>"
    << tot.loads_released() << "</td><td>" << r.recalls_size() << "</td><td>" << tot.open_refusals()
    << "</td></tr></table>\n";
  h << "</section>\n";

  // Charts.
  h << "<section id=\"charts\"><h2>Charts</h2>\n";
  {
    std::vector<std::string> days;
    std::set<std::string> rooms;
    std::map<std::string, std::map<std::string, int64_t>> values;
    for (absl::CivilDay d = DayOf(r.from_date()); d < DayOf(r.to_date()); ++d) {
      days.push_back(absl::FormatCivilTime(d).substr(5));
    }
    for (const auto& c : r.usage()) {
      const std::string room = "room " + c.room();
      rooms.insert(room);
      values[FormatDate(c.date()).substr(5)][room] += c.cartridges_opened();
    }
    h << BarChart("chart-usage", "Cartridges opened per day and room", days,
                  std::vector<std::string>(rooms.begin(), rooms.end()), values);
  }
  {
    // Weeks start on Monday, in the clinic's zone.
    std::vector<std::string> weeks;
    std::map<std::string, std::map<std::string, int64_t>> values;
    std::set<std::string> kinds;
    auto week_of = [](absl::CivilDay d) {
      while (absl::GetWeekday(d) != absl::Weekday::monday) --d;
      return d;
    };
    for (absl::CivilDay w = week_of(DayOf(r.from_date())); w < DayOf(r.to_date()); w += 7) {
      weeks.push_back("w/c " + absl::FormatCivilTime(w).substr(5));
    }
    for (const auto& e : r.exceptions()) {
      const absl::CivilDay d = absl::ToCivilDay(ToTime(e.time()), zone);
      const std::string week = "w/c " + absl::FormatCivilTime(week_of(d)).substr(5);
      values[week][e.kind_name()] += 1;
      kinds.insert(e.kind_name());
    }
    h << BarChart("chart-exceptions", "Exceptions per week", weeks,
                  std::vector<std::string>(kinds.begin(), kinds.end()), values);
  }
  if (stock != nullptr) {
    std::set<std::string> months;
    std::map<std::string, std::map<std::string, int64_t>> values;
    std::set<std::string> states;
    for (const auto& line : stock->lines()) {
      if (line.units_in_stock() == 0) continue;
      const std::string month = FormatDate(line.lot().expiry()).substr(0, 7);
      months.insert(month);
      std::string state = line.lot().state() == v1::LOT_STATE_RECALLED      ? "recalled"
                          : line.lot().state() == v1::LOT_STATE_QUARANTINED ? "quarantined"
                          : line.lot().expired()                            ? "expired"
                                                                            : "usable";
      states.insert(state);
      values[month][state] += line.units_in_stock();
    }
    h << BarChart("chart-stock", "Cartridges in stock by expiry month",
                  std::vector<std::string>(months.begin(), months.end()),
                  std::vector<std::string>(states.begin(), states.end()), values);
  }
  h << "</section>\n";

  // Detail.
  h << "<section id=\"detail\"><h2>Exceptions</h2>\n";
  if (r.exceptions().empty()) {
    h << "<p>None.</p>\n";
  } else {
    h << "<table id=\"exceptions\"><tr><th>When</th><th>Kind</th><th>What</th>"
      << "<th>Record</th></tr>\n";
    for (const auto& e : r.exceptions()) {
      h << "<tr class=\"exception\" data-kind=\"" << Esc(e.kind_name()) << "\"><td>"
        << Esc(InZone(e.time(), zone)) << "</td><td>" << Esc(e.kind_name()) << "</td><td>"
        << Esc(e.summary()) << "</td><td>";
      for (const auto& f : e.record()) {
        if (f.value().empty()) continue;
        h << "<b>" << Esc(f.name()) << "</b> " << Esc(f.value()) << "<br>";
      }
      h << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  h << "<h2>Recalls in the period</h2>\n";
  if (r.recalls().empty()) {
    h << "<p>None.</p>\n";
  } else {
    h << "<table id=\"recalls\"><tr><th>Lot</th><th>GTIN</th><th>Recalled</th><th>Reason</th>"
      << "<th>Serial</th><th>Treatment</th><th>Room</th><th>Client reference</th><th>Opened</th>"
      << "</tr>\n";
    for (const auto& rc : r.recalls()) {
      const std::string head = "<td>" + Esc(rc.lot().lot()) + "</td><td>" + Esc(rc.lot().gtin()) +
                               "</td><td>" + Esc(InZone(rc.lot().state_change_time(), zone)) +
                               "</td><td>" + Esc(rc.lot().state_reason()) + "</td>";
      if (rc.uses().empty()) {
        h << "<tr>" << head << "<td colspan=\"5\">not used in any treatment</td></tr>\n";
      }
      for (const auto& u : rc.uses()) {
        h << "<tr>" << head << "<td>" << Esc(u.serial()) << "</td><td>" << Esc(u.treatment().id())
          << "</td><td>" << Esc(u.treatment().room()) << "</td><td>"
          << Esc(u.treatment().client_ref()) << "</td><td>" << Esc(InZone(u.open_time(), zone))
          << "</td></tr>\n";
      }
    }
    h << "</table>\n";
  }
  h << "<h2>Refused openings in the period</h2>\n";
  if (r.refusals().empty()) {
    h << "<p>None.</p>\n";
  } else {
    h << "<table id=\"refusals\"><tr><th>When</th><th>Entry</th><th>Treatment</th><th>Reason</th>"
      << "<th>By</th><th>What</th><th>What followed</th></tr>\n";
    for (const auto& f : r.refusals()) {
      h << "<tr class=\"refusal" << (f.overridden() ? " no" : "") << "\"><td>"
        << Esc(InZone(f.time(), zone)) << "</td><td>#" << f.sequence() << "</td><td>"
        << f.treatment_id() << "</td><td>" << Esc(f.reason())
        << (f.overridden() ? " <b>OVERRIDDEN</b>" : "") << "</td><td>" << Esc(f.actor())
        << "</td><td>" << Esc(f.detail()) << "</td><td>" << Esc(FollowedText(f)) << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  h << "<h2>Usage per day and room</h2>\n";
  if (r.usage().empty()) {
    h << "<p>No treatments in the period.</p>\n";
  } else {
    h << "<table id=\"usage\"><tr><th>Day</th><th>Room</th><th>Treatments</th>"
      << "<th>Cartridges opened</th></tr>\n";
    for (const auto& c : r.usage()) {
      h << "<tr><td>" << Esc(FormatDate(c.date())) << "</td><td>" << Esc(c.room()) << "</td><td>"
        << c.treatments() << "</td><td>" << c.cartridges_opened() << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  if (stock != nullptr) {
    h << "<h2>Stock today (" << Esc(FormatDate(stock->today())) << ")</h2>\n"
      << "<table id=\"stock\"><tr><th>GTIN</th><th>Lot</th><th>State</th><th>Expiry</th>"
      << "<th>Units in stock</th></tr>\n";
    for (const auto& line : stock->lines()) {
      const auto& lot = line.lot();
      std::string state = lot.state() == v1::LOT_STATE_RECALLED      ? "RECALLED"
                          : lot.state() == v1::LOT_STATE_QUARANTINED ? "QUARANTINED"
                                                                     : "active";
      if (lot.expired()) state += ", EXPIRED";
      h << "<tr><td>" << Esc(lot.gtin()) << "</td><td>" << Esc(lot.lot()) << "</td><td>"
        << Esc(state) << "</td><td>" << Esc(FormatDate(lot.expiry())) << "</td><td>"
        << line.units_in_stock() << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  h << "<h2>Not checked</h2>\n<ul id=\"not-checked\">\n";
  if (r.unavailable_checks().empty()) h << "<li>None: every check was performed.</li>\n";
  for (const auto& c : r.unavailable_checks()) {
    h << "<li><b>" << Esc(c.name()) << "</b>: " << Esc(c.reason()) << "</li>\n";
  }
  h << "</ul>\n</section>\n";
  h << "<p class=\"note\">Produced by steritrack from the clinic's records; each exception names "
       "the record that proves it.</p>\n</body></html>\n";
  return h.str();
}

std::string ReportJson(const v1::ComplianceReport& r) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  static_cast<void>(google::protobuf::util::MessageToJsonString(r, &json, options));
  return json;
}

// Writes `content` to `path`, or to stdout when `path` is empty.
int Emit(Output& out, const std::string& path, const std::string& content) {
  if (path.empty()) {
    std::cout << content;
    if (!content.empty() && content.back() != '\n') std::cout << "\n";
    return kExitOk;
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
  file.close();
  if (!file) return out.BadInput("--out", "cannot write " + path);
  std::cerr << "wrote " << path << "\n";
  return kExitOk;
}

std::string UseLine(const v1::LotUse& u) {
  return (u.site().empty() ? "" : "site " + u.site() + "  ") + u.serial() + "  treatment " +
         u.treatment().id() + "  room " + u.treatment().room() + "  client " +
         u.treatment().client_ref() + "  clinician " + u.treatment().clinician() + "  opened " +
         FormatTime(u.open_time()) + (u.disposed() ? "  disposed" : "  NOT DISPOSED");
}

}  // namespace

void AddReportCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand("report", "Reports for managers: compliance for a period");
  group->require_subcommand(1);
  // report compliance --from DATE --to DATE [--format table|json|csv|html] [--out FILE]
  {
    struct Args {
      std::string from, to, format = "table", out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "compliance",
        "Compliance for a period: each exception with the record that proves it, then totals");
    cmd->add_option("--from", a->from, "first day, YYYY-MM-DD (clinic time zone)")->required();
    cmd->add_option("--to", a->to, "day after the last day, YYYY-MM-DD (excluded)")->required();
    cmd->add_option("--format", a->format, "table, json, csv or html")
        ->check(CLI::IsMember({"table", "json", "csv", "html"}))
        ->capture_default_str();
    cmd->add_option("--out", a->out, "write to FILE instead of standard output")->type_name("FILE");
    cmd->footer(
        "Exit code 0 when the report was produced, whatever it finds; read 'compliant'.\n"
        "Examples:\n"
        "  steritrack report compliance --from 2026-11-01 --to 2026-12-01\n"
        "  steritrack report compliance --from 2026-11-01 --to 2026-12-01 --format html "
        "--out november.html\n"
        "  steritrack report compliance --from 2026-11-01 --to 2026-12-01 --format json | jq "
        ".compliant");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        ReportDesk d(g);
        v1::GetComplianceReportRequest req;
        if (!ParseDay(a->from, req.mutable_from_date())) {
          return d.out().BadInput("--from", "is not a date YYYY-MM-DD: " + a->from);
        }
        if (!ParseDay(a->to, req.mutable_to_date())) {
          return d.out().BadInput("--to", "is not a date YYYY-MM-DD: " + a->to);
        }
        v1::ComplianceReport report;
        grpc::Status st = d.Call(&ReportStub::GetComplianceReport, req, &report);
        if (!st.ok()) return d.Fail(st);
        const std::string format = g.json ? "json" : a->format;
        if (format == "json") return Emit(d.out(), a->out, ReportJson(report));
        if (report.site_reports_size() > 0) {
          // A chain manager's report of every site: each site's own report, in turn.
          if (format != "table") {
            return d.out().BadInput("--format",
                                    "a chain-wide report is a table or JSON; for csv or html "
                                    "name a site (--site)");
          }
          std::string text;
          for (const v1::ComplianceReport& site : report.site_reports()) {
            text += "== site " + site.site() + "\n" + ReportTable(site) + "\n";
          }
          text += std::string(report.compliant() ? "COMPLIANT" : "NOT COMPLIANT") +
                  ": every site of the chain, " + std::to_string(report.site_reports_size()) +
                  " site(s)\n";
          return Emit(d.out(), a->out, text);
        }
        if (format == "csv") return Emit(d.out(), a->out, ReportCsv(report));
        if (format == "html") {
          v1::GetStockRequest stock_req;
          stock_req.set_expiring_within_days(30);
          v1::Stock stock;
          grpc::Status stock_st = d.Call(&ReportStub::GetStock, stock_req, &stock);
          if (!stock_st.ok()) return d.Fail(stock_st);
          return Emit(d.out(), a->out, ReportHtml(report, &stock));
        }
        return Emit(d.out(), a->out, ReportTable(report));
      };
    });
  }

  // stock [--expiring-within DAYS] | stock --check | stock par set|list|clear
  {
    auto days = std::make_shared<int>(-1);
    auto check = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand(
        "stock", "Cartridge stock: products against their par levels, then lots with expiry");
    CLI::Option* within =
        cmd->add_option("--expiring-within", *days,
                        "only lots with units in stock that expire within DAYS (expired ones too)")
            ->check(IntegerIn(0, 3650))
            ->type_name("DAYS");
    cmd->add_flag("--check", *check,
                  "only the products below par or with units expiring within their window: "
                  "exit 3 when there is any, 0 when none (for cron or monitoring)")
        ->excludes(within);
    cmd->footer(
        "Openable: in stock, not opened, disposed or written off, lot neither recalled nor\n"
        "quarantined, not expired today. BELOW PAR: openable minus expiring is under the par "
        "level.\n"
        "Examples:\n"
        "  steritrack stock\n"
        "  steritrack stock --expiring-within 30\n"
        "  steritrack stock --check || notify-manager    # exit 3: something is below par\n"
        "  steritrack stock par set --gtin 09506000134352 --min 20");
    AddStockParCommands(*cmd, g, action);
    cmd->callback([&g, &action, days, check, cmd] {
      if (!cmd->get_subcommands().empty()) {
        if (*check) {
          action = [&g] {
            Output out(g.json, std::cout, std::cerr);
            return out.BadInput("--check", "goes with `stock` alone, not with `stock par`");
          };
        }
        return;  // stock par ...: its own action
      }
      if (*check) {
        action = [&g] { return StockCheck(g); };
        return;
      }
      action = [&g, days] {
        ReportDesk d(g);
        v1::GetStockRequest req;
        req.set_expiring_within_days(*days < 0 ? 30 : *days);
        v1::Stock stock;
        grpc::Status st = d.Call(&ReportStub::GetStock, req, &stock);
        if (!st.ok()) return d.Fail(st);
        if (*days >= 0) {
          // Only what runs out within the window.
          google::protobuf::RepeatedPtrField<v1::StockLine> kept;
          for (const auto& line : stock.lines()) {
            if (line.expiring_soon()) *kept.Add() = line;
          }
          stock.mutable_lines()->Swap(&kept);
        }
        std::ostringstream text;
        if (!stock.products().empty()) {
          text << "Par levels on " << FormatDate(stock.today()) << ":\n";
          for (const auto& p : stock.products()) text << "  " << ProductStockLine(p) << "\n";
        }
        text << "Stock on " << FormatDate(stock.today()) << ": " << stock.units_in_stock()
             << " usable unit(s); " << stock.units_expiring() << " unit(s) expire within "
             << stock.expiring_within_days() << " days or have expired\n";
        if (stock.lines().empty()) {
          text << (*days >= 0 ? "  no lot expires in that window\n" : "  no lots\n");
        }
        for (const auto& line : stock.lines()) {
          const auto& lot = line.lot();
          std::string state = lot.state() == v1::LOT_STATE_RECALLED      ? "RECALLED"
                              : lot.state() == v1::LOT_STATE_QUARANTINED ? "QUARANTINED"
                                                                         : "active";
          text << "  " << lot.gtin() << "  " << lot.lot() << "  " << state << "  expires "
               << FormatDate(lot.expiry());
          if (line.days_to_expiry() < 0) {
            text << " (EXPIRED " << -line.days_to_expiry() << " days ago)";
          } else {
            text << " (in " << line.days_to_expiry() << " days)";
          }
          // A lot already past its expiry (core's verdict) is not "expiring": its units can no
          // longer be opened.
          const char* tag = !line.expiring_soon() ? "" : lot.expired() ? "  EXPIRED" : "  EXPIRING";
          text << "  " << line.units_in_stock() << " in stock" << tag << "\n";
        }
        return d.out().SuccessText(text.str(), "stock", stock);
      };
    });
  }
}

void AddRecallLookBackCommand(CLI::App& recall, const Globals& g, Action& action) {
  struct Args {
    std::string gtin, lot;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = recall.add_subcommand(
      "lookback", "Which treatments used a lot: rooms, dates, client references");
  cmd->add_option("--gtin", a->gtin, "14-digit GTIN")->required();
  cmd->add_option("--lot", a->lot, "lot number")->required();
  cmd->footer("Example:\n  steritrack recall lookback --gtin 09506000134352 --lot LOT-2024A");
  cmd->callback([&g, &action, a] {
    action = [&g, a] {
      ReportDesk d(g);
      v1::GetLotLookBackRequest req;
      req.set_gtin(a->gtin);
      req.set_lot(a->lot);
      v1::LotLookBack look_back;
      grpc::Status st = d.Call(&ReportStub::GetLotLookBack, req, &look_back);
      if (!st.ok()) return d.Fail(st);
      std::ostringstream text;
      const auto& lot = look_back.lot();
      text << "lot " << lot.lot() << " of " << lot.gtin() << " (expires "
           << FormatDate(lot.expiry()) << ")"
           << (lot.state() == v1::LOT_STATE_RECALLED ? " RECALLED: " + lot.state_reason() : "")
           << "\n";
      if (!look_back.sites().empty()) {
        text << "Held by site(s):";
        for (const std::string& site : look_back.sites()) text << " " << site;
        text << "\n";
      }
      if (look_back.uses().empty()) {
        text << "Not used in any treatment.\n";
      } else {
        std::set<std::string> treatments;
        for (const auto& u : look_back.uses()) treatments.insert(u.treatment().id());
        text << look_back.uses_size() << " unit(s) used in " << treatments.size()
             << " treatment(s):\n";
        for (const auto& u : look_back.uses()) text << "  " << UseLine(u) << "\n";
      }
      return d.out().SuccessText(text.str(), "lookback", look_back);
    };
  });
}

}  // namespace steritrack::cli
