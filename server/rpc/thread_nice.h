// A thread's CPU priority among the server's own threads. Linux gives each thread its own nice
// value, which a new thread takes from the thread that starts it: the lanes' threads start at the
// server's own. The write lane asks for a lower one (it is the database's one writer, which every
// write waits for: call_lanes.h), the background lane for a higher one (reports yield the cores:
// background_lane.h).
#ifndef STERITRACK_SERVER_RPC_THREAD_NICE_H_
#define STERITRACK_SERVER_RPC_THREAD_NICE_H_

namespace steritrack::rpc {

struct NiceShift {
  int wanted = 0;   // the nice value asked for (`delta` itself if the current one was unreadable)
  int refused = 0;  // the errno Linux refused it with; 0: the thread has it
};

// Moves the calling thread's nice value by `delta` from its current one, within Linux's -20..19,
// all of it or none: a refusal leaves the thread where it was. Raising it needs no privilege;
// lowering it needs CAP_SYS_NICE, or an RLIMIT_NICE soft limit down to the value asked (systemd's
// LimitNICE=, which lets every thread of the service go that low). `delta` 0: nothing asked.
NiceShift ShiftThisThreadsNice(int delta);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_THREAD_NICE_H_
