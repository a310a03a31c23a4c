// A full disk: changes fail with RESOURCE_EXHAUSTED naming the cause,
// nothing acknowledged is lost or corrupted, and service resumes when space
// returns. The data directory is a small tmpfs this test mounts (root only;
// skipped elsewhere) and unmounts.
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>

#include "integration/test_server.h"

namespace baton::testing {
namespace {

class SmallDisk {
 public:
  explicit SmallDisk(const std::string& size) {
    std::string pattern = (std::filesystem::temp_directory_path() / "baton-disk-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return;
    dir_ = pattern;
    mounted_ = mount("tmpfs", dir_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  bool Resize(const std::string& size) {
    return mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) == 0;
  }
  bool mounted() const { return mounted_; }
  std::string data_dir() const { return dir_ + "/data"; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

grpc::Status Put(TestServer& t, const std::string& text) {
  v1::PutRequest put;
  put.set_name("full/q");
  put.add_items()->set_text(text);
  v1::PutResponse resp;
  return t.queues->Put(Context().get(), put, &resp);
}

TEST(DiskFullTest, ChangesFailCleanlyAndResumeWhenSpaceReturns) {
  SmallDisk disk("512k");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.durability = rpc::Durability::kLocal;
  o.data_dir = disk.data_dir();
  TestServer t(o);

  // Fill the disk with 4 KiB items until the log refuses.
  const std::string payload(4096, 'x');
  int acknowledged = 0;
  grpc::Status refused;
  for (int i = 0; i < 1000; ++i) {
    grpc::Status s = Put(t, std::to_string(i) + ":" + payload);
    if (!s.ok()) {
      refused = s;
      break;
    }
    ++acknowledged;
  }
  ASSERT_GT(acknowledged, 10);
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("disk full"), std::string::npos)
      << refused.error_message();
  // Still full: a change that does not fit is still refused, and reads work.
  EXPECT_EQ(Put(t, "again:" + payload).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  v1::DescribeRequest dr;
  dr.set_name("full/q");
  v1::DescribeResponse d;
  ASSERT_TRUE(t.admin->Describe(Context().get(), dr, &d).ok());
  EXPECT_EQ(d.queue().size(), static_cast<uint64_t>(acknowledged));

  // Space returns: changes succeed again, and a restart finds exactly what
  // was acknowledged, in order.
  ASSERT_TRUE(disk.Resize("8m"));
  ASSERT_TRUE(Put(t, "after").ok());
  t.Restart();
  ASSERT_TRUE(t.admin->Describe(Context().get(), dr, &d).ok());
  EXPECT_EQ(d.queue().size(), static_cast<uint64_t>(acknowledged + 1));
  v1::GetRequest get;
  get.set_name("full/q");
  get.set_max_items(1000);
  *get.mutable_ttl() = Millis(60'000);
  v1::GetResponse got;
  ASSERT_TRUE(t.queues->Get(Context().get(), get, &got).ok());
  ASSERT_EQ(got.items_size(), acknowledged + 1);
  for (int i = 0; i < acknowledged; ++i) {
    EXPECT_EQ(got.items(i).text(), std::to_string(i) + ":" + payload) << i;
  }
  EXPECT_EQ(got.items(acknowledged).text(), "after");
}

}  // namespace
}  // namespace baton::testing
