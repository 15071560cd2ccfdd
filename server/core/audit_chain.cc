#include "steritrack/audit_chain.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::audit_chain {
namespace {

void Field(std::string& out, std::string_view value) {
  StrAppend(&out, value.size(), ":");
  out += value;
  out += ';';
}

void Field(std::string& out, int64_t value) { Field(out, StrCat(value)); }

}  // namespace

std::string Canonical(const Event& e) {
  std::string out = "steritrack.audit.v1;";
  Field(out, e.seq);
  Field(out, absl::ToUnixMicros(e.at));
  Field(out, e.actor);
  Field(out, e.action);
  Field(out, e.lot_id);
  Field(out, e.cartridge_id);
  Field(out, e.treatment_id);
  Field(out, e.item_id);
  Field(out, e.load_id);
  Field(out, e.sterilizer_id);
  Field(out, e.detail);
  Field(out, e.before);
  Field(out, e.after);
  Field(out, e.request_id);
  Field(out, e.corrects_seq);
  return out;
}

std::string EntryHash(const Sha256& sha256, std::string_view prev_hash, const Event& e) {
  const std::string canonical = Canonical(e);
  return sha256.HexDigest({prev_hash, canonical});
}

absl::StatusOr<int64_t> Append(AuditLogWrites& log, const Sha256& sha256, Event entry) {
  ASSIGN_OR_RETURN(AuditHead head, log.ReadHead());
  // Never reuse a seq the backend has issued, even if the head was cut back (the verifier reports
  // that; the new entry must not paper over it).
  entry.seq = std::max(head.seq, head.issued) + 1;
  entry.prev_hash = head.seq == 0 ? std::string(kGenesisHash) : head.hash;
  entry.hash = EntryHash(sha256, entry.prev_hash, entry);
  if (entry.hash.empty()) return absl::InternalError("cannot hash the audit entry");
  RETURN_IF_ERROR(log.Append(entry));
  return entry.seq;
}

absl::Status ChainExisting(const Sha256& sha256, std::vector<Event>& entries) {
  std::string prev(kGenesisHash);
  int64_t last_seq = 0;
  for (Event& e : entries) {
    if (e.seq <= last_seq) {
      return absl::InvalidArgumentError(
          StrCat("audit entries out of order: entry ", e.seq, " after entry ", last_seq));
    }
    e.prev_hash = prev;
    e.hash = EntryHash(sha256, prev, e);
    if (e.hash.empty()) return absl::InternalError("cannot hash an audit entry");
    prev = e.hash;
    last_seq = e.seq;
  }
  return absl::OkStatus();
}

absl::StatusOr<AuditChainCheck> Verify(AuditLogReads& log, const Sha256& sha256) {
  return VerifyAfter(log, sha256, std::nullopt);
}

absl::StatusOr<AuditChainCheck> VerifyAfter(AuditLogReads& log, const Sha256& sha256,
                                            const std::optional<AuditCheckpoint>& checkpoint) {
  AuditChainCheck check;
  auto broken = [&check](int64_t seq, std::string problem) {
    check.intact = false;
    check.first_bad_seq = seq;
    check.problem = std::move(problem);
    return check;
  };
  // The three records of how far the trail goes: the chain itself, the head written with every
  // entry, and the backend's own counter of the highest seq ever issued.
  ASSIGN_OR_RETURN(const AuditHead head, log.ReadHead());

  int64_t expected = 1;
  std::string prev(kGenesisHash);
  if (checkpoint.has_value() && checkpoint->seq > 0) {
    // The checkpoint's own entry must be exactly what was verified: else something before or at
    // it changed since, and only a full verification can say what.
    const int64_t c = checkpoint->seq;
    ASSIGN_OR_RETURN(std::vector<Event> at, log.ListAuditEntries({.after_seq = c - 1, .limit = 1}));
    if (at.empty() || at.front().seq != c) {
      return broken(c,
                    StrCat("entry ", c, ", verified before (the checkpoint), is missing (removed);",
                           " run a full verification"));
    }
    const Event& e = at.front();
    if (e.hash != checkpoint->hash || EntryHash(sha256, e.prev_hash, e) != checkpoint->hash) {
      return broken(c,
                    StrCat("entry ", c, " was altered after it was verified (it no longer matches",
                           " the verified checkpoint); run a full verification"));
    }
    prev = checkpoint->hash;
    check.checkpoint_seq = c;
    check.entries = c;
    expected = c + 1;
  }
  while (true) {
    ASSIGN_OR_RETURN(std::vector<Event> page,
                     log.ListAuditEntries({.after_seq = expected - 1, .limit = kVerifyPage}));
    for (const Event& e : page) {
      if (e.seq != expected) {
        return broken(expected, StrCat("entry ", expected, " is missing (removed)"));
      }
      const std::string own = EntryHash(sha256, e.prev_hash, e);
      if (e.prev_hash != prev) {
        // An entry that still matches its own hash is authentic, so its predecessor is the one
        // that was rewritten (altered and re-hashed).
        if (own == e.hash && expected > 1) {
          return broken(expected - 1, StrCat("entry ", expected - 1, " was rewritten: entry ",
                                             expected, " no longer follows it"));
        }
        return broken(expected, StrCat("entry ", expected, " does not follow entry ", expected - 1,
                                       " (altered or moved)"));
      }
      if (own != e.hash) {
        return broken(expected, StrCat("entry ", expected,
                                       " was altered: its contents do not match its hash"));
      }
      prev = e.hash;
      check.entries = expected;
      ++expected;
    }
    if (static_cast<int>(page.size()) < kVerifyPage) break;
  }
  const int64_t last = expected - 1;
  if (head.issued > last) {
    return broken(last + 1, StrCat("entry ", last + 1,
                                   " and later are missing: the trail was cut "
                                   "off after entry ",
                                   last, " but entries up to ", head.issued, " were issued"));
  }
  if (head.issued < last) {
    return broken(head.issued + 1,
                  StrCat("entries after ", head.issued, " were not issued by the server"));
  }
  if (head.seq > last) {
    return broken(last + 1, StrCat("entry ", last + 1,
                                   " and later are missing: the trail was cut "
                                   "off after entry ",
                                   last, " but the chain head records entry ", head.seq));
  }
  if (head.seq < last) {
    return broken(head.seq + 1,
                  StrCat("entries after ", head.seq, " are not covered by the chain head"));
  }
  if (head.seq > 0 && head.hash != prev) {
    return broken(last, StrCat("entry ", last, " does not match the chain head"));
  }
  if (last > 0) check.last_hash = prev;
  return check;
}

}  // namespace steritrack::audit_chain
