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

// Calls the library's own function `f` with `args`, its inner work ignored.
template <typename F, typename... Args>
auto Unseen(F f, Args... args) {
  Ignored ignored;
  return f(args...);
}

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

// The library's own function of type `type`, looked up once.
#define REAL(type, symbol)                    \
  ([] {                                       \
    static const auto f = Real<type>(symbol); \
    return f;                                 \
  }())

void Mutex::Lock() {
  Unseen(REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv"), this);
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  Unseen(REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv"), this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  const bool locked = Unseen(REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv"), this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  const bool locked =
      Unseen(REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv"), this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  __tsan_release(this);
  Unseen(REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv"), this);
}

void Mutex::ReaderUnlock() {
  __tsan_release(this);
  Unseen(REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv"), this);
}

void Mutex::LockWhen(const Condition& cond) {
  Unseen(
      REAL(void (*)(Mutex*, const Condition*), "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE"),
      this, &cond);
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  Unseen(REAL(void (*)(Mutex*, const Condition*),
              "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE"),
         this, &cond);
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  const bool met =
      Unseen(REAL(bool (*)(Mutex*, const Condition*, Duration),
                  "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE"),
             this, &cond, timeout);
  __tsan_acquire(this);  // held either way
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  const bool met =
      Unseen(REAL(bool (*)(Mutex*, const Condition*, Time),
                  "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE"),
             this, &cond, deadline);
  __tsan_acquire(this);
  return met;
}

void Mutex::Await(const Condition& cond) {
  __tsan_release(this);
  Unseen(REAL(void (*)(Mutex*, const Condition*), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE"),
         this, &cond);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  __tsan_release(this);
  const bool met =
      Unseen(REAL(bool (*)(Mutex*, const Condition*, Duration),
                  "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE"),
             this, &cond, timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  __tsan_release(this);
  const bool met =
      Unseen(REAL(bool (*)(Mutex*, const Condition*, Time),
                  "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE"),
             this, &cond, deadline);
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  __tsan_release(mu);
  Unseen(REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE"), this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  __tsan_release(mu);
  const bool timed_out =
      Unseen(REAL(bool (*)(CondVar*, Mutex*, Duration),
                  "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE"),
             this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  __tsan_release(mu);
  const bool timed_out =
      Unseen(REAL(bool (*)(CondVar*, Mutex*, Time),
                  "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE"),
             this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

void Notification::Notify() {
  __tsan_release(this);
  __tsan_release(Flag(this));
  Unseen(REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv"), this);
}

void Notification::WaitForNotification() const {
  Unseen(
      REAL(void (*)(const Notification*), "_ZNK4absl7debian312Notification19WaitForNotificationEv"),
      this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  const bool notified =
      Unseen(REAL(bool (*)(const Notification*, Duration),
                  "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE"),
             this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  const bool notified =
      Unseen(REAL(bool (*)(const Notification*, Time),
                  "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE"),
             this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}
