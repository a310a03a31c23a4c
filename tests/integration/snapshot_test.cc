// Snapshots over real gRPC: a server restarted from a snapshot plus the log
// after it shows exactly the state it showed before, the log shrinks as
// snapshots are taken, a damaged newest snapshot falls back to the previous
// one, and a server whose every snapshot is damaged after the log was
// compacted refuses to start rather than start from nothing.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/reflection.h"
#include "integration/test_server.h"
#include "service/version.h"

namespace baton::testing {
namespace {

bool Durable() { return TestServer::DefaultOptions().durability == rpc::Durability::kLocal; }

rpc::ServerOptions SnapshotOptions() {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.snapshot_entries = 40;
  o.wal_segment_bytes = 8 << 10;
  return o;
}

// Clears every google.protobuf.Duration in `m` (ages and times left change
// from one call to the next; everything else must not).
void StripDurations(google::protobuf::Message* m) {
  const auto* refl = m->GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  refl->ListFields(*m, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->message_type()->full_name() == "google.protobuf.Duration") {
      refl->ClearField(m, f);
    } else if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(*m, f); ++i) {
        StripDurations(refl->MutableRepeatedMessage(m, f, i));
      }
    } else {
      StripDurations(refl->MutableMessage(m, f));
    }
  }
}

// Every resource, described, in name order.
std::string Dump(TestServer& t) {
  std::string out;
  v1::ListRequest list;
  list.set_page_size(1000);
  for (;;) {
    v1::ListResponse page;
    grpc::Status s = t.admin->List(Context().get(), list, &page);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return out;
    for (const auto& r : page.resources()) {
      v1::DescribeRequest d;
      d.set_name(r.name());
      v1::DescribeResponse resp;
      grpc::Status ds = t.admin->Describe(Context().get(), d, &resp);
      EXPECT_TRUE(ds.ok()) << r.name() << ": " << ds.error_message();
      StripDurations(&resp);
      out += resp.DebugString();
    }
    if (page.next_page_token().empty()) return out;
    list.set_page_token(page.next_page_token());
  }
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A bit of everything: held locks (session and lease), a semaphore, an
// event, queues with ready and in-flight items, a future, a timer, tasks.
// Returns the number of changes made (about).
int Workload(TestServer& t, int round) {
  int changes = 0;
  std::string p = absl::StrCat("s", round, "/");
  uint64_t s = OpenSession(t, 600'000);
  ++changes;
  v1::AcquireLockRequest lock;
  lock.set_name(p + "lock");
  lock.set_session_id(s);
  v1::AcquireLockResponse held;
  EXPECT_TRUE(t.locks->Acquire(Context().get(), lock, &held).ok());
  lock.set_name(p + "leased");
  lock.set_session_id(0);
  *lock.mutable_ttl() = Millis(600'000);
  EXPECT_TRUE(t.locks->Acquire(Context().get(), lock, &held).ok());
  v1::AcquireSemaphoreRequest sem;
  sem.set_name(p + "sem");
  sem.set_capacity(5);
  sem.set_count(2);
  sem.set_session_id(s);
  v1::AcquireSemaphoreResponse sr;
  EXPECT_TRUE(t.semaphores->Acquire(Context().get(), sem, &sr).ok());
  v1::SetEventRequest ev;
  ev.set_name(p + "event");
  v1::SetEventResponse er;
  EXPECT_TRUE(t.events->Set(Context().get(), ev, &er).ok());
  changes += 4;
  for (int i = 0; i < 20; ++i) {
    v1::PutRequest put;
    put.set_name(p + "queue");
    put.add_items()->set_text(absl::StrCat("item ", i));
    v1::PutResponse pr;
    EXPECT_TRUE(t.queues->Put(Context().get(), put, &pr).ok());
    ++changes;
  }
  v1::GetRequest get;
  get.set_name(p + "queue");
  get.set_max_items(3);
  get.set_session_id(s);
  *get.mutable_ttl() = Millis(600'000);
  v1::GetResponse got;
  EXPECT_TRUE(t.queues->Get(Context().get(), get, &got).ok());
  v1::SetResultRequest fut;
  fut.set_name(p + "future");
  fut.set_text("42");
  v1::SetResultResponse fr;
  EXPECT_TRUE(t.futures->SetResult(Context().get(), fut, &fr).ok());
  v1::ScheduleTimerRequest timer;
  timer.set_name(p + "timer");
  *timer.mutable_after() = Millis(3'600'000);
  timer.mutable_action()->mutable_set_event()->set_name(p + "fired");
  v1::ScheduleTimerResponse tr;
  EXPECT_TRUE(t.timers->Schedule(Context().get(), timer, &tr).ok());
  for (int i = 0; i < 3; ++i) {
    v1::SubmitTaskRequest task;
    task.set_queue(p + "work");
    task.set_text(absl::StrCat("job ", i));
    v1::SubmitTaskResponse tsr;
    EXPECT_TRUE(t.tasks->Submit(Context().get(), task, &tsr).ok());
  }
  changes += 6;
  for (int i = 0; i < 20; ++i) {
    v1::KeepAliveRequest ka;
    ka.set_session_id(s);
    v1::KeepAliveResponse kr;
    EXPECT_TRUE(t.sessions->KeepAlive(Context().get(), ka, &kr).ok());
    ++changes;
  }
  return changes;
}

// The next item a Get of `queue` hands out is `text`.
void ExpectNextItem(TestServer& t, const std::string& queue, const std::string& text) {
  v1::GetRequest get;
  get.set_name(queue);
  *get.mutable_ttl() = Millis(60'000);
  v1::GetResponse got;
  ASSERT_TRUE(t.queues->Get(Context().get(), get, &got).ok());
  ASSERT_EQ(got.items_size(), 1);
  EXPECT_EQ(got.items(0).text(), text);
}

TEST(SnapshotTest, ARestartFromSnapshotsShowsTheSameStateAndTheLogShrinks) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  TestServer t(SnapshotOptions());
  int changes = 0;
  for (int round = 0; round < 6; ++round) changes += Workload(t, round);
  auto taken = t.server().Snapshot();
  ASSERT_TRUE(taken.ok()) << taken.status();
  log::Snapshotter::Stats stats = t.server().snapshotter()->stats();
  EXPECT_GE(stats.taken, 3u) << "one every 40 entries, and the one asked for";
  EXPECT_EQ(stats.failed, 0u);
  // Only the newest two are kept; the log lost its oldest segments.
  std::vector<std::string> snaps = Files(t.data_dir() + "/snap");
  EXPECT_EQ(snaps.size(), 2u) << ::testing::PrintToString(snaps);
  std::vector<std::string> wal = Files(t.data_dir() + "/wal");
  ASSERT_FALSE(wal.empty());
  EXPECT_EQ(wal.front().find("-00000000000000000001."), std::string::npos)
      << "the first segment should be gone: " << ::testing::PrintToString(wal);

  std::string before = Dump(t);
  ASSERT_NE(before.find("s5/queue"), std::string::npos);
  t.Restart();
  EXPECT_GE(t.server().restored_index(), *taken);
  EXPECT_LT(t.server().replayed(), static_cast<uint64_t>(changes));
  EXPECT_EQ(Dump(t), before);

  // And the restored state goes on working: the leased lock is still held
  // (a try-once acquire fails), the queue hands out the next item in order.
  v1::AcquireLockRequest lock;
  lock.set_name("s0/leased");
  *lock.mutable_ttl() = Millis(10'000);
  *lock.mutable_timeout() = Millis(0);
  v1::AcquireLockResponse no;
  EXPECT_EQ(t.locks->Acquire(Context().get(), lock, &no).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectNextItem(t, "s0/queue", "item 3");
}

// Large entries bound the log too: with snapshots by entry count off, a
// log grown by --snapshot_mb since the last snapshot gets one, and the log
// drops what the previous one covers.
// A data directory restarted with another --shards is split again by name:
// every resource and session looks the same, held locks keep their tokens,
// and it goes on working; and back again.
TEST(SnapshotTest, ARestartWithAnotherShardCountShowsTheSameStateAndGoesOn) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  rpc::ServerOptions o = SnapshotOptions();
  o.shards = 2;
  TestServer t(o);
  // Snapshots every 40 entries: some state is in the last snapshot, some
  // only in the log after it.
  for (int round = 0; round < 5; ++round) Workload(t, round);
  uint64_t session = OpenSession(t, 600'000);
  // A wait in line with a request_id: an orphan after the restart, which
  // its retry takes over.
  v1::AcquireLockRequest wait;
  wait.set_name("s0/lock");
  wait.set_session_id(session);
  wait.set_request_id("w1");
  auto waiting_ctx = Context(60'000);
  grpc::Status waited_status;
  std::thread waiter([&, stub = v1::Locks::NewStub(t.NewChannel())] {
    v1::AcquireLockResponse waited;
    waited_status = stub->Acquire(waiting_ctx.get(), wait, &waited);
  });
  absl::Cleanup join_waiter = [&] {
    waiting_ctx->TryCancel();
    if (waiter.joinable()) waiter.join();
  };
  std::string before;
  for (int i = 0; i < 100; ++i) {
    before = Dump(t);
    if (before.find("waiters: 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(before.find("s4/queue"), std::string::npos);
  v1::DescribeRequest d;
  d.set_name("s0/leased");
  v1::DescribeResponse leased;
  ASSERT_TRUE(t.admin->Describe(Context().get(), d, &leased).ok());
  ASSERT_EQ(leased.holders_size(), 1);
  uint64_t token = leased.holders(0).token();

  for (int shards : {1, 3, 2}) {
    SCOPED_TRACE(::testing::Message() << shards << " shards");
    t.RestartWithShards(shards);
    if (waiter.joinable()) {
      waiter.join();  // its call ended with the old server
      EXPECT_EQ(waited_status.error_code(), grpc::StatusCode::UNAVAILABLE);
    }
    EXPECT_EQ(t.server().shard_count(), static_cast<uint32_t>(shards));
    std::string after = Dump(t);
    // The waiter is an orphan now, waiting for its retry.
    EXPECT_NE(after.find("orphaned_waiters: 1"), std::string::npos) << after;
    std::ifstream recorded(t.data_dir() + "/shards");
    int count = 0;
    recorded >> count;
    EXPECT_EQ(count, shards);
    v1::KeepAliveRequest ka;
    ka.set_session_id(session);
    v1::KeepAliveResponse kr;
    grpc::Status ks = t.sessions->KeepAlive(Context().get(), ka, &kr);
    EXPECT_TRUE(ks.ok()) << ks.error_message();
    ASSERT_TRUE(t.admin->Describe(Context().get(), d, &leased).ok());
    ASSERT_EQ(leased.holders_size(), 1);
    EXPECT_EQ(leased.holders(0).token(), token);
  }
  // The same resources, holders, items and sessions as before, but for the
  // waiter, now orphaned.
  std::string after = Dump(t);
  EXPECT_EQ(absl::StrReplaceAll(after, {{"orphaned_waiters: 1\n", ""}}), before);

  // It goes on: the queue hands out the next item in order, a new lock's
  // token is above every earlier one, the orphan's retry takes its place.
  ExpectNextItem(t, "s0/queue", "item 3");
  v1::AcquireLockRequest fresh;
  fresh.set_name("fresh");
  *fresh.mutable_ttl() = Millis(60'000);
  v1::AcquireLockResponse fr;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), fresh, &fr).ok());
  EXPECT_GT(fr.token(), token);
  v1::ReleaseLockRequest release;
  release.set_name("s0/lock");
  ASSERT_TRUE(t.admin
                  ->Describe(
                      Context().get(),
                      [] {
                        v1::DescribeRequest r;
                        r.set_name("s0/lock");
                        return r;
                      }(),
                      &leased)
                  .ok());
  ASSERT_EQ(leased.holders_size(), 1);
  release.set_token(leased.holders(0).token());
  release.set_session_id(leased.holders(0).session_id());
  v1::ReleaseLockResponse rr;
  grpc::Status rs = t.locks->Release(Context().get(), release, &rr);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  v1::AcquireLockResponse retried;
  grpc::Status ws = t.locks->Acquire(Context().get(), wait, &retried);
  ASSERT_TRUE(ws.ok()) << ws.error_message();
  EXPECT_GT(retried.token(), fr.token());
}

TEST(SnapshotTest, ALogGrownBySnapshotBytesGetsASnapshot) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  rpc::ServerOptions o = SnapshotOptions();
  o.snapshot_entries = 0;
  o.snapshot_bytes = 64 << 10;
  o.wal_segment_bytes = 16 << 10;
  TestServer t(o);
  // After each Put, until the snapshotter has seen its entry and written
  // what that started: a cut still being written when the next threshold
  // passes takes both (on a loaded machine), and this test counts them.
  log::Snapshotter::Stats stats;
  auto settled = [&] {
    uint64_t target = t.server().applied_index();
    for (int i = 0; i < 2000; ++i) {
      stats = t.server().snapshotter()->stats();
      if (stats.seen_index >= target && !stats.cutting) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  };
  std::string payload(8 << 10, 'x');
  for (int i = 0; i < 40; ++i) {  // 320 KiB of items: about 5 snapshots
    v1::PutRequest put;
    put.set_name("big/queue");
    put.add_items()->set_text(absl::StrCat(i, payload));
    v1::PutResponse pr;
    ASSERT_TRUE(t.queues->Put(Context().get(), put, &pr).ok());
    ASSERT_TRUE(settled()) << "snapshotter still busy 10 s after put " << i;
  }
  EXPECT_GE(stats.taken, 4u);
  EXPECT_LE(stats.taken, 6u);
  // The log holds what came after the previous snapshot, not 320 KiB.
  uint64_t wal_bytes = 0;
  for (const std::string& f : Files(t.data_dir() + "/wal")) {
    // A segment the snapshot made obsolete may be deleted meanwhile (the
    // log drops them after the snapshotter is done; seen under load): gone
    // counts as nothing.
    std::error_code error;
    uintmax_t size = std::filesystem::file_size(t.data_dir() + "/wal/" + f, error);
    if (!error) wal_bytes += size;
  }
  EXPECT_LT(wal_bytes, 200u << 10);
  std::string before = Dump(t);
  t.Restart();
  EXPECT_EQ(Dump(t), before);
}

TEST(SnapshotTest, ADamagedNewestSnapshotFallsBackToThePreviousOne) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  rpc::ServerOptions o = SnapshotOptions();
  o.snapshot_entries = 0;  // only the ones asked for
  TestServer t(o);
  Workload(t, 0);
  auto first = t.server().Snapshot();
  ASSERT_TRUE(first.ok()) << first.status();
  Workload(t, 1);
  auto second = t.server().Snapshot();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_GT(*second, *first);
  Workload(t, 2);
  std::string before = Dump(t);
  t.Shutdown();
  std::vector<std::string> snaps = Files(t.data_dir() + "/snap");
  ASSERT_EQ(snaps.size(), 2u);
  std::string newest = t.data_dir() + "/snap/" + snaps.back();
  {
    std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  t.Restart();
  EXPECT_EQ(t.server().restored_index(), *first);
  EXPECT_EQ(Dump(t), before);
}

TEST(SnapshotTest, EverySnapshotDamagedAfterCompactionRefusesToStart) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  std::string dir = (std::filesystem::temp_directory_path() / "baton-snap-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  rpc::ServerOptions o = SnapshotOptions();
  o.data_dir = dir;
  {
    TestServer t(o);
    for (int round = 0; round < 4; ++round) Workload(t, round);
    ASSERT_TRUE(t.server().Snapshot().ok());
  }
  for (const std::string& name : Files(dir + "/snap")) {
    std::ofstream(dir + "/snap/" + name, std::ios::trunc) << "BATONSNP garbage";
  }
  auto s = rpc::Server::Start(o);
  ASSERT_FALSE(s.ok()) << "started from nothing although the log was compacted";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(SnapshotTest, ATimerInASnapshotFiresOnceAfterTheRestart) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  rpc::ServerOptions o = SnapshotOptions();
  o.snapshot_entries = 0;
  TestServer t(o);
  v1::ScheduleTimerRequest sched;
  sched.set_name("t/timer");
  *sched.mutable_after() = Millis(600);
  auto* put = sched.mutable_action()->mutable_put();
  put->set_queue("t/fired");
  put->mutable_item()->set_text("tick");
  v1::ScheduleTimerResponse sr;
  ASSERT_TRUE(t.timers->Schedule(Context().get(), sched, &sr).ok());
  ASSERT_TRUE(t.server().Snapshot().ok());
  t.Restart();
  EXPECT_GT(t.server().restored_index(), 0u);
  v1::GetRequest get;
  get.set_name("t/fired");
  *get.mutable_ttl() = Millis(60'000);
  *get.mutable_timeout() = Millis(5'000);
  v1::GetResponse got;
  grpc::Status st = t.queues->Get(Context().get(), get, &got);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(got.items(0).text(), "tick");
  ASSERT_TRUE(t.server().Snapshot().ok());
  t.Restart();
  *get.mutable_timeout() = Millis(800);
  v1::GetResponse none;
  EXPECT_EQ(t.queues->Get(Context().get(), get, &none).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(SnapshotTest, ASnapshotAskedForDuringAnotherOneStillCompletesOnAnIdleServer) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  rpc::ServerOptions o = SnapshotOptions();
  o.snapshot_entries = 1;  // a cut after nearly every entry
  TestServer t(o);
  uint64_t s = OpenSession(t, 600'000);
  std::atomic<bool> stop{false};
  std::thread load([&] {
    while (!stop) {
      v1::KeepAliveRequest ka;
      ka.set_session_id(s);
      v1::KeepAliveResponse kr;
      t.sessions->KeepAlive(Context().get(), ka, &kr);
    }
  });
  for (int i = 0; i < 20; ++i) {
    auto r = std::async(std::launch::async, [&] { return t.server().Snapshot(); });
    ASSERT_EQ(r.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "request " << i;
    EXPECT_TRUE(r.get().ok());
    if (i == 10) {
      stop = true;
      load.join();
    }
  }
  // Idle now: each request must still find an entry to cut after.
  for (int i = 0; i < 5; ++i) {
    auto a = std::async(std::launch::async, [&] { return t.server().Snapshot(); });
    auto b = std::async(std::launch::async, [&] { return t.server().Snapshot(); });
    ASSERT_EQ(a.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    ASSERT_EQ(b.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_TRUE(a.get().ok());
    EXPECT_TRUE(b.get().ok());
  }
}

TEST(SnapshotTest, AFailingSnapshotIsTriedAgainAfterAnotherIntervalAndServiceGoesOn) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  std::string dir = (std::filesystem::temp_directory_path() / "baton-snapfail-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  // A file where the snapshot directory should be: every Save fails.
  std::ofstream(dir + "/snap") << "in the way";
  rpc::ServerOptions o = SnapshotOptions();
  o.data_dir = dir;
  o.snapshot_entries = 20;
  {
    TestServer t(o);
    uint64_t s = OpenSession(t, 600'000);
    for (int i = 0; i < 200; ++i) {
      v1::KeepAliveRequest ka;
      ka.set_session_id(s);
      v1::KeepAliveResponse kr;
      ASSERT_TRUE(t.sessions->KeepAlive(Context().get(), ka, &kr).ok());
    }
    absl::StatusOr<uint64_t> asked = t.server().Snapshot();
    EXPECT_FALSE(asked.ok());
    log::Snapshotter::Stats stats = t.server().snapshotter()->stats();
    EXPECT_EQ(stats.taken, 0u);
    // About one attempt per 20 entries (200 keepalives, the session, the
    // request): not one per entry.
    EXPECT_GE(stats.failed, 5u);
    EXPECT_LE(stats.failed, 15u);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(SnapshotTest, InMemorySnapshotsAreRefused) {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.durability = rpc::Durability::kNone;
  TestServer t(o);
  EXPECT_EQ(t.server().Snapshot().status().code(), absl::StatusCode::kFailedPrecondition);
}

// Admin/SaveSnapshot, streamed to `path`. Returns the index from the first
// chunk, or the call's error.
absl::StatusOr<uint64_t> SaveSnapshot(TestServer& t, const std::string& path) {
  auto ctx = Context(30'000);
  v1::SaveSnapshotRequest req;
  auto reader = t.admin->SaveSnapshot(ctx.get(), req);
  std::ofstream out(path, std::ios::binary);
  v1::SnapshotChunk chunk;
  uint64_t index = 0;
  uint64_t total = 0;
  uint64_t written = 0;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    if (chunks++ == 0) {
      index = chunk.index();
      total = chunk.total_bytes();
    } else {
      EXPECT_EQ(chunk.index(), 0u) << "only the first chunk carries the index";
    }
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    written += chunk.data().size();
  }
  grpc::Status s = reader->Finish();
  if (!s.ok())
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  EXPECT_EQ(written, total);
  EXPECT_GT(total, 0u);
  return index;
}

v1::ServerInfoResponse Info(TestServer& t) {
  v1::ServerInfoResponse info;
  grpc::Status s = t.admin->ServerInfo(Context().get(), v1::ServerInfoRequest(), &info);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return info;
}

// A backup taken through the API while the server runs restores, into a new
// data directory and with another shard count, to exactly the state it
// showed, and the restored server goes on working.
TEST(BackupTest, ASavedSnapshotRestoresEveryKindIntoANewDataDirectory) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  std::string file;
  std::string before;
  uint64_t index = 0;
  std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("baton-backup-", getpid())).string();
  std::filesystem::create_directories(dir);
  absl::Cleanup remove_dir = [&] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  {
    rpc::ServerOptions o = SnapshotOptions();
    o.shards = 2;
    TestServer t(o);
    for (int round = 0; round < 3; ++round) Workload(t, round);
    file = dir + "/backup.snap";
    auto saved = SaveSnapshot(t, file);
    ASSERT_TRUE(saved.ok()) << saved.status();
    index = *saved;
    EXPECT_GE(index, Info(t).snapshot_index());
    EXPECT_EQ(Info(t).snapshot_index(), index);
    before = Dump(t);
    ASSERT_NE(before.find("s2/queue"), std::string::npos);
    // Changes after the backup are not in it.
    v1::SetEventRequest ev;
    ev.set_name("after/backup");
    v1::SetEventResponse er;
    ASSERT_TRUE(t.events->Set(Context().get(), ev, &er).ok());
  }
  rpc::ServerOptions o = SnapshotOptions();
  o.shards = 3;
  o.restore_from = file;
  TestServer restored(o);
  EXPECT_EQ(Dump(restored), before);
  EXPECT_EQ(Info(restored).shards(), 3u);
  EXPECT_GE(Info(restored).applied_index(), index);
  // It goes on: the leased lock is still held, the queue hands out the next
  // item in order.
  v1::AcquireLockRequest lock;
  lock.set_name("s1/leased");
  *lock.mutable_ttl() = Millis(10'000);
  *lock.mutable_timeout() = Millis(0);
  v1::AcquireLockResponse no;
  EXPECT_EQ(restored.locks->Acquire(Context().get(), lock, &no).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectNextItem(restored, "s1/queue", "item 3");

  // Restoring never overwrites: a directory with state is refused.
  rpc::ServerOptions twice = o;
  twice.data_dir = dir + "/twice";
  auto first = rpc::Server::Start(twice);
  ASSERT_TRUE(first.ok()) << first.status();
  first->reset();
  auto refused = rpc::Server::Start(twice);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("holds state already"), std::string::npos)
      << refused.status();
}

TEST(BackupTest, ADamagedOrMissingBackupIsRefusedAndTheDirectoryStaysEmpty) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("baton-backup-bad-", getpid()))
          .string();
  std::filesystem::create_directories(dir);
  absl::Cleanup remove_dir = [&] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  std::string file = dir + "/backup.snap";
  {
    TestServer t;
    Workload(t, 0);
    ASSERT_TRUE(SaveSnapshot(t, file).ok());
  }
  // One byte flipped in the middle.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    auto size = static_cast<std::streamoff>(f.tellg());
    f.seekg(size / 2);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    f.seekp(size / 2);
    f.write(&c, 1);
  }
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.data_dir = dir + "/data";
  o.restore_from = file;
  auto bad = rpc::Server::Start(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_FALSE(std::filesystem::exists(o.data_dir + "/snap/"));
  o.restore_from = dir + "/no-such-file";
  auto missing = rpc::Server::Start(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

TEST(BackupTest, InMemoryThereIsNoSnapshotToSave) {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.durability = rpc::Durability::kNone;
  TestServer t(o);
  auto saved = SaveSnapshot(t, "/dev/null");
  EXPECT_EQ(saved.status().code(), absl::StatusCode::kFailedPrecondition) << saved.status();
}

TEST(ServerInfoTest, SaysWhatTheServerIsAndWhereItsLogStands) {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.config = {{"listen", "127.0.0.1:0"}, {"shards", "2"}};
  TestServer t(o);
  v1::ServerInfoResponse first = Info(t);
  EXPECT_EQ(first.version(), Build().version);
  EXPECT_EQ(first.commit(), Build().commit);
  EXPECT_FALSE(first.build().empty());
  EXPECT_EQ(first.role(), "standalone");
  EXPECT_EQ(first.shards(), 2u);
  EXPECT_EQ(first.durability(), Durable() ? "local" : "none");
  EXPECT_EQ(first.data_dir().empty(), !Durable());
  EXPECT_EQ(first.config().at("shards"), "2");
  EXPECT_EQ(first.config().size(), 2u);
  EXPECT_GT(first.started_at().seconds(), 1'700'000'000);
  v1::SetEventRequest ev;
  ev.set_name("info/e");
  v1::SetEventResponse er;
  ASSERT_TRUE(t.events->Set(Context().get(), ev, &er).ok());
  EXPECT_GT(Info(t).applied_index(), first.applied_index());
}

}  // namespace
}  // namespace baton::testing
