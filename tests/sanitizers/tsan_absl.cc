// ThreadSanitizer and Debian's abseil (tests/tsan.sh, issue 12).
//
// Debian builds abseil without -fsanitize=thread, so ThreadSanitizer cannot see what absl::Mutex,
// absl::CondVar and absl::Notification synchronise (they wait on futexes and atomics inside the
// library) and reports every access they order as a race. This file, linked into tsan_test only,
// defines the abseil functions our code calls; each calls the library's own (found with
// dlsym(RTLD_NEXT)) and tells ThreadSanitizer what it did:
//   - taking a lock (Lock, ReaderLock, a successful TryLock, LockWhen) acquires the mutex;
//   - letting it go (Unlock, ReaderUnlock) releases it first;
//   - waiting (Await, CondVar::Wait) releases it, waits, and acquires it again;
//   - Notify releases the notification; WaitForNotification, and HasBeenNotified (inline, an
//     acquiring load of its flag), acquire it.
// The library's own work inside each call (conditions it evaluates for waiters, its queues) is
// ignored: it happens under the mutex, which these annotations already order.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();

namespace {

template <typename F>
F Real(const char* symbol) {
  void* f = dlsym(RTLD_NEXT, symbol);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl: abseil has no %s\n", symbol);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

// The library's work inside a call, not seen by ThreadSanitizer.
struct Ignored {
  Ignored() { __tsan_ignore_thread_begin(); }
  ~Ignored() { __tsan_ignore_thread_end(); }
};

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

// The notification's flag, as HasBeenNotified (inline) loads it: after its mutex.
void* Flag(const Notification* n) {
  return const_cast<char*>(reinterpret_cast<const char*>(n) + sizeof(Mutex));
}

}  // namespace

#define TSAN_ABSL_REAL(type, symbol)           \
  static const auto real = Real<type>(symbol); \
  static_assert(true, "a semicolon after the macro")

void Mutex::Lock() {
  TSAN_ABSL_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  {
    Ignored ignored;
    real(this);
  }
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  TSAN_ABSL_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  {
    Ignored ignored;
    real(this);
  }
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  TSAN_ABSL_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  bool locked;
  {
    Ignored ignored;
    locked = real(this);
  }
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  TSAN_ABSL_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  bool locked;
  {
    Ignored ignored;
    locked = real(this);
  }
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  TSAN_ABSL_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(this);
  Ignored ignored;
  real(this);
}

void Mutex::ReaderUnlock() {
  TSAN_ABSL_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(this);
  Ignored ignored;
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  TSAN_ABSL_REAL(void (*)(Mutex*, const Condition&),
                 "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  {
    Ignored ignored;
    real(this, cond);
  }
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  TSAN_ABSL_REAL(void (*)(Mutex*, const Condition&),
                 "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  {
    Ignored ignored;
    real(this, cond);
  }
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  TSAN_ABSL_REAL(bool (*)(Mutex*, const Condition&, Duration),
                 "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  bool met;
  {
    Ignored ignored;
    met = real(this, cond, timeout);
  }
  __tsan_acquire(this);  // held either way
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  TSAN_ABSL_REAL(bool (*)(Mutex*, const Condition&, Time),
                 "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  bool met;
  {
    Ignored ignored;
    met = real(this, cond, deadline);
  }
  __tsan_acquire(this);
  return met;
}

void Mutex::Await(const Condition& cond) {
  TSAN_ABSL_REAL(void (*)(Mutex*, const Condition&),
                 "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  {
    Ignored ignored;
    real(this, cond);
  }
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  TSAN_ABSL_REAL(bool (*)(Mutex*, const Condition&, Duration),
                 "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  bool met;
  {
    Ignored ignored;
    met = real(this, cond, timeout);
  }
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  TSAN_ABSL_REAL(bool (*)(Mutex*, const Condition&, Time),
                 "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  bool met;
  {
    Ignored ignored;
    met = real(this, cond, deadline);
  }
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  TSAN_ABSL_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  {
    Ignored ignored;
    real(this, mu);
  }
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  TSAN_ABSL_REAL(bool (*)(CondVar*, Mutex*, Duration),
                 "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  bool timed_out;
  {
    Ignored ignored;
    timed_out = real(this, mu, timeout);
  }
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  TSAN_ABSL_REAL(bool (*)(CondVar*, Mutex*, Time),
                 "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  bool timed_out;
  {
    Ignored ignored;
    timed_out = real(this, mu, deadline);
  }
  __tsan_acquire(mu);
  return timed_out;
}

void Notification::Notify() {
  TSAN_ABSL_REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(this);
  __tsan_release(Flag(this));
  Ignored ignored;
  real(this);
}

void Notification::WaitForNotification() const {
  TSAN_ABSL_REAL(void (*)(const Notification*),
                 "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  {
    Ignored ignored;
    real(this);
  }
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  TSAN_ABSL_REAL(bool (*)(const Notification*, Duration),
                 "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool notified;
  {
    Ignored ignored;
    notified = real(this, timeout);
  }
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  TSAN_ABSL_REAL(bool (*)(const Notification*, Time),
                 "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  bool notified;
  {
    Ignored ignored;
    notified = real(this, deadline);
  }
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}
