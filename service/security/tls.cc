#include "service/security/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace baton::security {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read the ", what, " ", path));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "not PEM";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Bio MemBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<X509Ptr> FirstCertificate(const std::string& path, const char* what) {
  auto pem = ReadFile(path, what);
  if (!pem.ok()) return pem.status();
  Bio bio = MemBio(*pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", what, " ", path, " holds no PEM certificate (", OpenSslError(), ")"));
  }
  return cert;
}

std::string Subject(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

std::string TimeText(const ASN1_TIME* t) {
  Bio bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

bool IsLoopback(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) return true;
  std::string host = listen.substr(0, listen.rfind(':'));
  return absl::StartsWith(host, "127.") || host == "[::1]" || host == "localhost";
}

absl::StatusOr<CertificateInfo> CheckTls(const TlsOptions& tls, const std::string& listen) {
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: give both or neither");
  }
  if (!tls.enabled()) {
    if (!tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError("--client_ca needs TLS: give --tls_cert and --tls_key too");
    }
    if (!IsLoopback(listen) && !tls.allow_plaintext) {
      return absl::InvalidArgumentError(
          absl::StrCat("refusing to serve plaintext on ", listen,
                       ", which is not a loopback address: give --tls_cert and --tls_key, or "
                       "--allow_plaintext if the network is trusted"));
    }
    return CertificateInfo{};
  }
  if (tls.reload_interval.count() < 1) {
    return absl::InvalidArgumentError("--tls_reload_s must be at least 1");
  }
  auto cert = FirstCertificate(tls.cert_file, "certificate");
  if (!cert.ok()) return cert.status();
  auto key_pem = ReadFile(tls.key_file, "private key");
  if (!key_pem.ok()) return key_pem.status();
  Bio bio = MemBio(*key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(absl::StrCat("the private key ", tls.key_file,
                                                   " holds no PEM private key (", OpenSslError(),
                                                   "); an encrypted key is not supported"));
  }
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "the private key ", tls.key_file, " does not match the certificate ", tls.cert_file));
  }
  if (!tls.client_ca_file.empty()) {
    auto ca = FirstCertificate(tls.client_ca_file, "client CA bundle");
    if (!ca.ok()) return ca.status();
  }
  CertificateInfo info;
  info.subject = Subject(cert->get());
  const ASN1_TIME* not_after = X509_get0_notAfter(cert->get());
  info.not_after = TimeText(not_after);
  struct tm tm {};
  if (ASN1_TIME_to_tm(not_after, &tm) == 1) info.expires_unix = timegm(&tm);
  return info;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials(
    const TlsOptions& tls, const std::string& listen) {
  auto checked = CheckTls(tls, listen);
  if (!checked.ok()) return checked.status();
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  auto interval = static_cast<unsigned int>(tls.reload_interval.count());
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file, interval);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace baton::security
