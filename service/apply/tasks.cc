// Tasks: Submit, Take, Heartbeat, Complete, Await, Cancel, Wait, and the
// task timers (delay, worker lease, reclaim). A work queue's tasks live in
// one TaskQueue resource (primitives/task_queue.h); task ids are
// "<queue>#<seq>", so every call about a task reaches the queue's shard.
//
// Awaiters of one task park in the resource's sub-line named "#<seq>"
// (Resource::conditions, line kCondition: for a non-lock resource it has no
// re-acquire step). Wait calls park in the kJoiners line with their task list
// in TaskQueue::wait_args.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Task;
using primitives::TaskQueue;
using primitives::TaskState;
using primitives::Waiter;

namespace {

std::string SubLine(uint64_t seq) { return absl::StrCat("#", seq); }

}  // namespace

std::string ShardState::TaskId(const std::string& queue, uint64_t seq) {
  return absl::StrCat(queue, "#", seq);
}

TaskReport ShardState::Report(const std::string& queue, const Task& t) const {
  TaskReport r;
  r.id = TaskId(queue, t.seq);
  r.state = t.state;
  r.result = t.result;
  r.error_code = t.error_code;
  r.error_message = t.error_message;
  r.attempts = t.attempts;
  return r;
}

void ShardState::SetTaskTimer(const std::string& queue, Task& t, Time at) {
  if (t.timer_at != kForever) RemoveTimer(t.timer_at, TimerKind::kTask, t.seq);
  t.timer_at = at;
  if (at != kForever) {
    AddTimer(at, TimerKind::kTask, t.seq);
    task_names_[t.seq] = queue;
  } else {
    task_names_.erase(t.seq);
  }
}

absl::StatusOr<std::pair<ShardState::Resource*, Task*>> ShardState::FindTask(
    const std::string& queue, uint64_t seq) {
  auto r = Lookup(queue, Kind::kTasks, /*create=*/false, 0);
  if (!r.ok()) return r.status();
  if (*r != nullptr) {
    auto it = (*r)->tasks().tasks.find(seq);
    if (it != (*r)->tasks().tasks.end()) return std::make_pair(*r, &it->second);
  }
  return absl::NotFoundError(
      absl::StrCat("no task '", TaskId(queue, seq), "': never submitted, or done and reclaimed"));
}

void ShardState::TasksSessionEnded(const std::string& name, Resource& r, uint64_t session, Time now,
                                   Effects& out) {
  // Its running tasks are lost: retried, or failed.
  std::vector<uint64_t> lost;
  for (const auto& [seq, t] : r.tasks().tasks) {
    if (t.state == primitives::TaskState::kRunning && t.session == session) lost.push_back(seq);
  }
  for (uint64_t seq : lost)
    LoseTask(name, r, r.tasks().tasks.at(seq), "its session ended", now, out);
}

void ShardState::Do(const SubmitTask& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.queue, Kind::kTasks, /*create=*/true, 0);
  if (!r.ok()) return fail(r.status());
  TaskQueue& tq = (*r)->tasks();
  if (static_cast<int64_t>(tq.tasks.size()) >= limits_.max_tasks_per_queue) {
    absl::Status s = absl::ResourceExhaustedError(
        absl::StrCat("work queue '", c.queue, "' holds ", tq.tasks.size(), " tasks (limit ",
                     limits_.max_tasks_per_queue, "): wait for some to finish and be reclaimed"));
    return fail(s);
  }
  Task t;
  t.seq = NextId(next_task_seq_);
  t.payload = c.payload;
  t.max_attempts = std::max<uint32_t>(1, c.max_attempts);
  t.group = c.group;
  t.shielded = c.shielded;
  t.run_timeout = c.run_timeout;
  t.submitted = now;
  uint64_t seq = t.seq;
  Task& task = tq.tasks.emplace(seq, std::move(t)).first->second;
  if (c.delay > 0) {
    task.delayed = true;
    SetTaskTimer(c.queue, task, AddSaturating(now, c.delay));
  } else {
    tq.Ready(seq, /*at_head=*/false);
  }
  TaskReport submitted;
  submitted.id = TaskId(c.queue, seq);
  out.push_back(Answer(c, origin, std::move(submitted)));
  PumpTasks(c.queue, tq, now, out);
}

void ShardState::StartTask(const std::string& queue, TaskQueue& tq, uint64_t seq,
                           const Waiter& worker, Time now, Effects& out) {
  Task& t = tq.tasks.at(seq);
  t.state = TaskState::kRunning;
  ++t.attempts;
  t.session = worker.session;
  t.owner = worker.owner;
  t.lease = worker.lease;
  t.take_request_id = worker.request_id;
  Ref(t.session, queue);
  t.run_deadline = t.run_timeout > 0 ? AddSaturating(now, t.run_timeout) : kForever;
  Time lease_end = worker.lease > 0 ? AddSaturating(now, worker.lease) : kForever;
  SetTaskTimer(queue, t, std::min(lease_end, t.run_deadline));
  TakenTask taken{TaskId(queue, seq), t.payload, t.attempts};
  out.push_back(Reply{worker.op, Result::Ok(std::move(taken))});
}

void ShardState::PumpTasks(const std::string& queue, TaskQueue& tq, Time now, Effects& out) {
  while (!tq.takers.empty() && !tq.ready.empty()) {
    Waiter w = tq.takers.PopFront();
    Unpark(queue, w);
    NoteGrant(queue, w);
    StartTask(queue, tq, tq.PopReady(), w, now, out);
  }
}

void ShardState::Do(const TakeTask& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.queue, Kind::kTasks, /*create=*/true, 0);
  if (!r.ok()) return fail(r.status());
  TaskQueue& tq = (*r)->tasks();
  if (absl::Status s = Superseded(c.queue, c.session, c.request_id, c.nowait, now); !s.ok()) {
    return fail(s);
  }
  if (!c.request_id.empty()) {
    // A retry of a Take that started a task still running that attempt.
    for (const auto& [seq, t] : tq.tasks) {
      if (t.state == TaskState::kRunning && t.session == c.session &&
          t.take_request_id == c.request_id && t.owner == caller_) {
        Claim(c.queue, c.session, c.request_id);
        return out.push_back(
            Answer(c, origin, TakenTask{TaskId(c.queue, seq), t.payload, t.attempts}));
      }
    }
  }
  Waiter w;
  w.op = origin;
  w.session = c.session;
  w.owner = caller_;
  w.since = now;
  w.deadline = c.deadline;
  w.lease = c.lease;
  w.request_id = c.request_id;
  // The retry of a Take that a restart orphaned: it keeps its place.
  if (Adopt(c.queue, tq.takers, c.session, c.request_id, origin, c.deadline, now, out)) return;
  NoteNothingFound(c.queue, c.session, c.request_id, c.nowait, now);
  if (tq.takers.empty() && !tq.ready.empty()) {
    StartTask(c.queue, tq, tq.PopReady(), w, now, out);
    return;
  }
  if (c.deadline <= now) {
    return fail(absl::DeadlineExceededError(
        absl::StrCat("work queue '", c.queue, "' has no pending task")));
  }
  if (absl::Status s = CheckCanPark(tq.takers, c.queue); !s.ok()) {
    return fail(s);
  }
  Park(tq.takers, c.queue, std::move(w));
}

void ShardState::Do(const UndeliverTask& c, OpRef, Time now, Effects& out) {
  auto found = FindTask(c.queue, c.seq);
  if (!found.ok()) return;
  auto [res, t] = *found;
  if (t->state != TaskState::kRunning || t->attempts != c.attempt) return;
  Unstart(c.queue, res->tasks(), *t);
  PumpTasks(c.queue, res->tasks(), now, out);
}

void ShardState::Unstart(const std::string& queue, TaskQueue& tq, Task& t) {
  --t.attempts;
  StopRunning(queue, t);
  t.state = TaskState::kPending;
  tq.Ready(t.seq, /*at_head=*/true);
}

void ShardState::StopRunning(const std::string& queue, Task& t) {
  Unref(t.session, queue);
  t.session = 0;
  t.owner = 0;
  t.lease = 0;
  t.take_request_id.clear();
  t.run_deadline = kForever;
  SetTaskTimer(queue, t, kForever);
}

absl::StatusOr<Task*> ShardState::RunningTask(const std::string& queue, uint64_t seq,
                                              uint32_t attempt) {
  auto found = FindTask(queue, seq);
  if (!found.ok()) return found.status();
  Task* t = found->second;
  if (t->state != TaskState::kRunning || t->attempts != attempt) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task '", TaskId(queue, seq), "' attempt ", attempt, " is not running",
        t->done() ? ": the task is done" : ": it was lost (lease or session) and retried"));
  }
  if (!MayUse(t->owner)) {
    return NotYours(absl::StrCat("task '", TaskId(queue, seq), "' attempt ", attempt));
  }
  return t;
}

void ShardState::Do(const HeartbeatTask& c, OpRef origin, Time now, Effects& out) {
  auto t = RunningTask(c.queue, c.seq, c.attempt);
  if (!t.ok()) return out.push_back(Reply{origin, Result::Error(t.status())});
  if ((*t)->lease > 0) {
    SetTaskTimer(c.queue, **t, std::min(AddSaturating(now, (*t)->lease), (*t)->run_deadline));
  }
  out.push_back(Answer(c, origin, TaskHeartbeat{(*t)->cancel_requested}));
}

void ShardState::FinishTask(const std::string& queue, Resource& res, Task& t, TaskState state,
                            Time now, Effects& out) {
  TaskQueue& tq = res.tasks();
  t.state = state;
  SetTaskTimer(queue, t, AddSaturating(now, limits_.future_retention));  // reclaim later
  // Wake its awaiters.
  auto line = res.conditions.find(SubLine(t.seq));
  if (line != res.conditions.end()) {
    for (const Waiter& w : line->second.RemoveAll()) {
      Unpark(queue, w);
      out.push_back(Reply{w.op, Result::Ok(TaskReports{{Report(queue, t)}, {}})});
    }
    res.conditions.erase(line);
  }
  // TaskGroup: a failure cancels the rest of the group, shielded tasks apart.
  if (state == TaskState::kFailed && !t.group.empty()) {
    for (auto& [seq, other] : tq.tasks) {
      if (seq == t.seq || other.group != t.group || other.shielded || other.done()) continue;
      if (other.state == TaskState::kRunning) {
        other.cancel_requested = true;
      } else {
        if (!other.delayed) tq.Unready(seq);
        other.delayed = false;
        other.error_message = absl::StrCat("cancelled: task ", TaskId(queue, t.seq), " of group '",
                                           t.group, "' failed");
        FinishTask(queue, res, other, TaskState::kCancelled, now, out);
      }
    }
  }
  CheckWaits(queue, tq, /*timed_out=*/false, now, out);
}

void ShardState::Do(const CompleteTask& c, OpRef origin, Time now, Effects& out) {
  auto t = RunningTask(c.queue, c.seq, c.attempt);
  if (!t.ok()) return out.push_back(Reply{origin, Result::Error(t.status())});
  Resource& res = resources_.find(c.queue)->second;
  Task& task = **t;
  if (c.give_back && !task.cancel_requested) {
    // Unlike Unstart (a lost Take reply, server-side), the attempt keeps its
    // number, so that a late or repeated give-back can never end the next
    // attempt; it just does not count against the limit.
    StopRunning(c.queue, task);
    ++task.max_attempts;
    task.state = TaskState::kPending;
    res.tasks().Ready(task.seq, /*at_head=*/true);
    out.push_back(Answer(c, origin, TaskCompleted{TaskState::kPending, false}));
    PumpTasks(c.queue, res.tasks(), now, out);
    return;
  }
  StopRunning(c.queue, task);
  bool was_cancelled = task.cancel_requested;
  TaskState state = TaskState::kSucceeded;
  if (was_cancelled) {
    state = TaskState::kCancelled;
  } else if (c.failed) {
    task.error_code = c.error_code;
    task.error_message = c.error_message;
    if (!c.final && task.attempts < task.max_attempts) {
      task.state = TaskState::kPending;  // retry
      res.tasks().Ready(task.seq, /*at_head=*/false);
      out.push_back(Answer(c, origin, TaskCompleted{TaskState::kPending, false}));
      PumpTasks(c.queue, res.tasks(), now, out);
      return;
    }
    state = TaskState::kFailed;
  } else {
    task.result = c.result;
  }
  FinishTask(c.queue, res, task, state, now, out);
  out.push_back(Answer(c, origin, TaskCompleted{state, was_cancelled}));
}

void ShardState::LoseTask(const std::string& queue, Resource& res, Task& t, const char* why,
                          Time now, Effects& out) {
  StopRunning(queue, t);
  if (t.cancel_requested) return FinishTask(queue, res, t, TaskState::kCancelled, now, out);
  if (t.attempts < t.max_attempts) {
    t.state = TaskState::kPending;
    res.tasks().Ready(t.seq, /*at_head=*/true);
    PumpTasks(queue, res.tasks(), now, out);
    return;
  }
  t.error_code = 14;  // UNAVAILABLE: the worker went away
  t.error_message =
      absl::StrCat("worker lost (", why, ") on attempt ", t.attempts, " of ", t.max_attempts);
  FinishTask(queue, res, t, TaskState::kFailed, now, out);
}

void ShardState::Do(const AwaitTask& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto found = FindTask(c.queue, c.seq);
  if (!found.ok()) return fail(found.status());
  auto [res, t] = *found;
  if (t->done()) {
    return out.push_back(Answer(c, origin, TaskReports{{Report(c.queue, *t)}, {}}));
  }
  if (c.deadline <= now) {
    return fail(absl::DeadlineExceededError(
        absl::StrCat("task '", TaskId(c.queue, c.seq), "' is not done")));
  }
  auto& line = res->conditions[SubLine(c.seq)];
  if (absl::Status s = CheckCanPark(line, c.queue); !s.ok()) {
    if (line.empty()) res->conditions.erase(SubLine(c.seq));
    return fail(s);
  }
  Waiter w;
  w.op = origin;
  w.since = now;
  w.deadline = c.deadline;
  w.line = kCondition;
  w.in_condition.Mutable().condition = SubLine(c.seq);
  Park(line, c.queue, std::move(w));
}

void ShardState::Do(const CancelTask& c, OpRef origin, Time now, Effects& out) {
  auto found = FindTask(c.queue, c.seq);
  if (!found.ok()) return out.push_back(Reply{origin, Result::Error(found.status())});
  auto [res, t] = *found;
  bool cancelled = !t->done();
  if (t->state == TaskState::kRunning) {
    t->cancel_requested = true;  // the worker learns it at its next call
  } else if (t->state == TaskState::kPending) {
    if (t->delayed) {
      SetTaskTimer(c.queue, *t, kForever);
      t->delayed = false;
    } else {
      res->tasks().Unready(t->seq);
    }
    FinishTask(c.queue, *res, *t, TaskState::kCancelled, now, out);
  }
  out.push_back(Answer(c, origin, TaskCancelled{cancelled, t->state}));
}

// True if a Wait over `w` is satisfied; fills `report` with done and pending.
bool ShardState::WaitSatisfied(const std::string& queue, TaskQueue& tq,
                               const primitives::MultiWait& w, TaskReports& report) const {
  size_t done = 0;
  bool failed = false;
  for (uint64_t seq : w.seqs) {
    auto it = tq.tasks.find(seq);
    if (it == tq.tasks.end()) continue;  // reclaimed: cannot happen while waited for
    if (it->second.done()) {
      ++done;
      failed = failed || it->second.state == TaskState::kFailed;
      report.done.push_back(Report(queue, it->second));
    } else {
      report.pending.push_back(TaskId(queue, seq));
    }
  }
  switch (w.mode) {
    case 1:
      return done > 0;
    case 2:
      return failed || done == w.seqs.size();
    default:
      return done == w.seqs.size();
  }
}

void ShardState::Do(const WaitTasks& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  std::vector<uint64_t> seqs = c.seqs;
  if (!c.group.empty()) {
    auto r = Lookup(c.queue, Kind::kTasks, /*create=*/false, 0);
    if (!r.ok()) return fail(r.status());
    if (*r != nullptr) {
      for (const auto& [seq, t] : (*r)->tasks().tasks) {
        if (t.group == c.group) seqs.push_back(seq);
      }
    }
    if (seqs.empty()) {
      return fail(absl::NotFoundError(
          absl::StrCat("work queue '", c.queue, "' has no task in group '", c.group, "'")));
    }
  }
  for (uint64_t seq : seqs) {
    if (auto found = FindTask(c.queue, seq); !found.ok()) return fail(found.status());
  }
  TaskQueue& tq = resources_.find(c.queue)->second.tasks();
  primitives::MultiWait mw{seqs, c.mode};
  TaskReports report;
  if (WaitSatisfied(c.queue, tq, mw, report) || c.deadline <= now) {
    return out.push_back(Answer(c, origin, std::move(report)));
  }
  if (absl::Status s = CheckCanPark(tq.waits, c.queue); !s.ok()) return fail(s);
  Waiter w;
  w.op = origin;
  w.since = now;
  w.deadline = c.deadline;
  w.line = kJoiners;
  uint64_t id = Park(tq.waits, c.queue, std::move(w));
  tq.wait_args[id] = std::move(mw);
}

void ShardState::CheckWaits(const std::string& queue, TaskQueue& tq, bool, Time, Effects& out) {
  std::vector<uint64_t> ready;
  for (const auto& [seq, w] : tq.waits) {
    TaskReports report;
    if (WaitSatisfied(queue, tq, tq.wait_args.at(w.id), report)) ready.push_back(w.id);
  }
  for (uint64_t id : ready) {
    std::optional<Waiter> w = tq.waits.Remove(id);
    TaskReports report;
    WaitSatisfied(queue, tq, tq.wait_args.at(id), report);
    tq.wait_args.erase(id);
    Unpark(queue, *w);
    out.push_back(Reply{w->op, Result::Ok(std::move(report))});
  }
}

void ShardState::OnTaskTimer(uint64_t seq, Time now, Effects& out) {
  auto n = task_names_.find(seq);
  if (n == task_names_.end()) return;
  std::string queue = n->second;
  auto it = resources_.find(queue);
  if (it == resources_.end() || it->second.kind != Kind::kTasks) return;
  Resource& res = it->second;
  TaskQueue& tq = res.tasks();
  auto ti = tq.tasks.find(seq);
  if (ti == tq.tasks.end()) return;
  Task& t = ti->second;
  if (t.timer_at > now) return;
  t.timer_at = kForever;  // the entry that fired is gone
  task_names_.erase(seq);
  if (t.done()) {
    tq.tasks.erase(ti);  // retention over
    MaybeReclaim(queue);
  } else if (t.delayed) {
    t.delayed = false;
    tq.Ready(seq, /*at_head=*/false);
    PumpTasks(queue, tq, now, out);
  } else if (t.state == TaskState::kRunning) {
    LoseTask(queue, res, t,
             t.run_deadline <= now ? "the attempt ran past its run_timeout"
                                   : "its lease ran out without a heartbeat",
             now, out);
  }
}

// Describe: the work queue, with its running tasks as holders.
// --- the kind's hooks (kinds.cc) ---

ShardState::PrimitiveState ShardState::TasksBlank(int64_t) { return TaskQueue(); }

// Wait calls stand in the joiners' line.
primitives::WaiterQueue* ShardState::TasksLine(Resource& r, uint8_t line) {
  return line == kJoiners ? &r.tasks().waits : nullptr;
}

// A Wait that leaves early forgets its arguments; one that timed out
// returns what is done by then, as asyncio.wait does: not an error.
bool ShardState::TasksWaiterLeaving(const std::string& name, Resource& r, Waiter& w, EndReason why,
                                    Time, Effects& out) {
  if (w.line != kJoiners) return false;
  TaskQueue& tq = r.tasks();
  if (why != EndReason::kTimedOut) {
    tq.wait_args.erase(w.id);
    return false;
  }
  TaskReports report;
  WaitSatisfied(name, tq, tq.wait_args.at(w.id), report);
  tq.wait_args.erase(w.id);
  Unpark(name, w);
  out.push_back(Reply{w.op, Result::Ok(std::move(report))});
  MaybeReclaim(name);
  return true;
}

void ShardState::DescribeTasks(const std::string& name, Resource& r, Time now, ResourceInfo& info) {
  for (const auto& [seq, t] : r.tasks().tasks) {
    if (t.done()) {
      ++info.tasks_done;
    } else if (t.state == primitives::TaskState::kRunning) {
      ++info.tasks_running;
      info.holders.push_back(HolderInfo{seq, t.session, 1, 0,
                                        t.timer_at == kForever ? kForever : t.timer_at - now,
                                        TaskId(name, seq)});
    } else {
      ++info.tasks_pending;
    }
  }
}

// Shutdown and restart: waits for tasks end too.
void ShardState::TasksEndAll(const std::string& name, Resource& r, const absl::Status& status,
                             Effects& out) {
  EndLine(name, r.tasks().waits, status, out);
  r.tasks().wait_args.clear();
}

// Orphans: a Take may stay in line across a restart.
bool ShardState::TasksOrphanable(const Waiter&) { return true; }

// The task an unclaimed Take was given is pending again, first in line.
void ShardState::TasksRollBack(const std::string& name, Resource& r, const GrantKey& k, Time now,
                               Effects& out) {
  TaskQueue& tq = r.tasks();
  for (auto& [seq, t] : tq.tasks) {
    if (t.state == TaskState::kRunning && t.session == k.session &&
        t.take_request_id == k.request_id) {
      Unstart(name, tq, t);
      break;
    }
  }
  PumpTasks(name, tq, now, out);
}

uint32_t ShardState::TasksHolders(Resource& r) {
  uint32_t running = 0;
  for (const auto& [seq, t] : r.tasks().tasks) running += t.state == TaskState::kRunning ? 1 : 0;
  return running;
}

}  // namespace baton::apply
