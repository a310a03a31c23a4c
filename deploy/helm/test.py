#!/usr/bin/env python3
"""Tests the Helm chart deploy/helm/baton without a cluster.

  lint      `helm lint --strict` passes.
  template  the default render has exactly a StatefulSet (1 replica, gRPC
            probes on the gRPC port, a PVC template, non-root with a
            read-only root filesystem), two Services (one headless), a
            PodDisruptionBudget, a ConfigMap with batond.toml and the
            `helm test` Pod (baton health against the Service); the
            replica count 3 and a config key the chart owns are refused
            with a message saying why.
  batond    the chart's batond command line (command + args) and its
            ConfigMap run the real batond: paths are mapped into a temporary
            directory (/etc/baton -> the rendered ConfigMap, /var/lib/baton
            -> an empty directory) and the 0.0.0.0 listen addresses to
            127.0.0.1:0; nothing else of the command line is changed. It
            must serve Health/Check SERVING and stop with exit 0 on SIGTERM.
            Run for the default values, for metrics enabled with a few
            config entries set, and for TLS + principals: certificates made
            with openssl stand in for the tls Secret and a tokens file for
            the tokens Secret; then Health/Check is called over TLS, /healthz
            (the probes' target over TLS) answers 200 on the metrics port,
            and a call without a token is refused while one with it passes.
  tls       the render with tls.secretName, tls.mutual and auth.*: TLS flags
            instead of --allow_plaintext, /healthz probes, the Secrets
            mounted, the policy in the ConfigMap, the test Pod over TLS; and
            the combinations that cannot work refused with a reason.

Usage: test.py BATOND   (helm and grpcurl on PATH or in $(go env GOPATH)/bin)
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "baton")


def tool(name):
    path = shutil.which(name)
    if path:
        return path
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout.strip()
    path = os.path.join(gopath or "/root/go", "bin", name)
    if not os.path.exists(path):
        raise SystemExit("%s not found: run scripts/setup.sh --test" % name)
    return path


def helm(*args, check=True):
    r = subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("helm %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def render(*sets):
    args = ["template", "t", CHART]
    for s in sets:
        args += ["--set", s]
    docs = [d for d in yaml.safe_load_all(helm(*args).stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def check_lint():
    r = helm("lint", "--strict", CHART)
    print("ok: helm lint --strict: " + r.stdout.strip().splitlines()[-1])


def check_template():
    objs = render()
    kinds = sorted(k for k, _ in objs)
    assert kinds == ["ConfigMap", "Pod", "PodDisruptionBudget", "Service", "Service",
                     "StatefulSet"], kinds
    test_pod = objs[("Pod", "t-baton-health-test")]
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["spec"]["containers"][0]["command"] == [
        "/usr/local/bin/baton", "health", "--addr", "t-baton:7411"]
    sts = objs[("StatefulSet", "t-baton")]
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == "t-baton-headless"
    headless = objs[("Service", "t-baton-headless")]
    assert headless["spec"]["clusterIP"] == "None"
    pod = sts["spec"]["template"]["spec"]
    c = pod["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"] == {"port": 7411}, (probe, c[probe])
    assert c["ports"][0]["containerPort"] == 7411
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["resources"]["limits"] and c["resources"]["requests"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/var/lib/baton", "/etc/baton"}
    assert "--config=/etc/baton/batond.toml" in c["args"]
    assert objs[("PodDisruptionBudget", "t-baton")]["spec"]["maxUnavailable"] == 1
    assert "batond.toml" in objs[("ConfigMap", "t-baton")]["data"]
    # Kubernetes must not SIGKILL batond while it is still inside its shutdown grace.
    toml = objs[("ConfigMap", "t-baton")]["data"]["batond.toml"]
    grace = re.search(r"^shutdown_grace_ms = (\d+)$", toml, re.M)
    grace_ms = int(grace.group(1)) if grace else 2000
    assert pod["terminationGracePeriodSeconds"] * 1000 >= grace_ms + 5000, \
        (pod["terminationGracePeriodSeconds"], grace_ms)
    print("ok: helm template renders StatefulSet, Services (client, headless), PDB, ConfigMap, "
          "test Pod")

    for n in (0, 2, 3):
        r = helm("template", "t", CHART, "--set", "replicaCount=%d" % n, check=False)
        if n == 0:
            assert r.returncode != 0, "replicaCount=0 rendered"
            continue
        assert r.returncode != 0 and "clustering is not available yet" in r.stderr, r.stderr
    r = helm("template", "t", CHART, "--set", "config.listen=0.0.0.0:1", check=False)
    assert r.returncode != 0 and "set by the chart" in r.stderr, r.stderr
    print("ok: replicaCount 2 and 3 refused (clustering is not available yet); config.listen refused")


POLICY = "role all write *\ngrant ci all\n"
TOKEN = "chart-test-token"
TLS_SETS = ["tls.secretName=baton-tls", "auth.tokensSecretName=baton-tokens",
            "auth.policy=" + POLICY.replace(",", "\\,")]


def check_tls_template():
    objs = render(*TLS_SETS)
    sts = objs[("StatefulSet", "t-baton")]
    pod = sts["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c["args"]
    for a in ("--tls_cert=/etc/baton-tls/tls.crt", "--tls_key=/etc/baton-tls/tls.key",
              "--auth_policy=/etc/baton/policy", "--auth_tokens=/etc/baton-tokens/tokens",
              "--metrics_listen=0.0.0.0:9464"):
        assert a in args, (a, args)
    assert "--allow_plaintext" not in args, args
    assert not any(a.startswith("--client_ca") for a in args), args
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": 9464}, (probe, c[probe])
        assert "grpc" not in c[probe]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["tls"] == "/etc/baton-tls" and mounts["tokens"] == "/etc/baton-tokens", mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "baton-tls"
    assert volumes["tokens"]["secret"]["secretName"] == "baton-tokens"
    assert objs[("ConfigMap", "t-baton")]["data"]["policy"].strip() == POLICY.strip()
    test_pod = objs[("Pod", "t-baton-health-test")]["spec"]
    assert test_pod["containers"][0]["command"][-2:] == ["--ca", "/etc/baton-tls/ca.crt"], \
        test_pod["containers"][0]["command"]
    assert test_pod["volumes"][0]["secret"]["secretName"] == "baton-tls"

    mutual = render(*TLS_SETS, "tls.mutual=true", "tls.testClientSecretName=baton-test-client")
    c = mutual[("StatefulSet", "t-baton")]["spec"]["template"]["spec"]["containers"][0]
    assert "--client_ca=/etc/baton-tls/ca.crt" in c["args"], c["args"]
    cmd = mutual[("Pod", "t-baton-health-test")]["spec"]["containers"][0]["command"]
    assert cmd[-4:] == ["--cert", "/etc/baton-client/tls.crt", "--key",
                        "/etc/baton-client/tls.key"], cmd
    for sets, why in (
            (["tls.mutual=true"], "tls.mutual needs tls.secretName"),
            (["tls.secretName=x", "tls.mutual=true"], "tls.mutual needs tls.testClientSecretName"),
            (["auth.tokensSecretName=x"], "auth.tokensSecretName without auth.policy"),
            (["config.tls_cert=/x"], "set by the chart")):
        args = ["template", "t", CHART]
        for one in sets:
            args += ["--set", one]
        r = helm(*args, check=False)
        assert r.returncode != 0 and why in r.stderr, (sets, r.stderr)
    print("ok: tls + auth render TLS flags, /healthz probes, mounted Secrets, the policy, a TLS "
          "test Pod; impossible combinations refused")


def make_tls_files(directory):
    """A CA, and a server certificate it signs for localhost: the tls Secret."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
            "tls.key", "-out", "tls.csr")
    with open(os.path.join(directory, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "tls.crt")
    for junk in ("ca.key", "tls.csr", "ext.cnf", "ca.srl"):
        if os.path.exists(os.path.join(directory, junk)):
            os.remove(os.path.join(directory, junk))


def run_batond(batond, sets, label, tls=False):
    """Runs batond with the command line and config file the chart renders."""
    objs = render(*sets)
    sts = objs[("StatefulSet", "t-baton")]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    config_map = objs[("ConfigMap", "t-baton")]
    tmp = tempfile.mkdtemp(prefix="baton-helm-")
    try:
        mounts = {}
        for m in c["volumeMounts"]:
            path = os.path.join(tmp, m["name"])
            os.mkdir(path)
            mounts[m["mountPath"]] = path
        for name, text in config_map["data"].items():
            with open(os.path.join(mounts["/etc/baton"], name), "w") as f:
                f.write(text)
        # What the Secrets would hold.
        if "/etc/baton-tls" in mounts:
            make_tls_files(mounts["/etc/baton-tls"])
        if "/etc/baton-tokens" in mounts:
            digest = hashlib.sha256(TOKEN.encode()).hexdigest()
            with open(os.path.join(mounts["/etc/baton-tokens"], "tokens"), "w") as f:
                f.write("ci %s\n" % digest)
        assert c["command"] == ["/usr/local/bin/batond"], c["command"]

        def mapped(arg):
            # Longest first: /etc/baton is a prefix of /etc/baton-tls.
            for container_path in sorted(mounts, key=len, reverse=True):
                arg = re.sub("=" + re.escape(container_path) + r"(?=/|$)",
                             "=" + mounts[container_path], arg)
            return re.sub(r"=0\.0\.0\.0:\d+$", "=127.0.0.1:0", arg)

        argv = [batond] + [mapped(a) for a in c["args"]]
        proc = subprocess.Popen(argv, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            line = proc.stdout.readline()
            m = re.match(r"listening on (\S+)", line)
            if not m:
                proc.wait(timeout=30)
                raise AssertionError("batond %s did not start:\n%s" % (" ".join(argv),
                                                                         proc.stderr.read()))
            addr = m.group(1)
            if tls:
                conn = ["-cacert", os.path.join(mounts["/etc/baton-tls"], "ca.crt"),
                        "-servername", "localhost"]
            else:
                conn = ["-plaintext"]

            def grpcurl(*args):
                return subprocess.run([tool("grpcurl"), *conn, *args], capture_output=True,
                                      text=True, timeout=30)
            r = grpcurl(addr, "grpc.health.v1.Health/Check")
            assert "SERVING" in r.stdout, r.stdout + r.stderr
            if tls:
                metrics = re.match(r"metrics on http://(\S+)/metrics", proc.stdout.readline())
                assert metrics, "no 'metrics on' line: the probes need the listener"
                with urllib.request.urlopen("http://%s/healthz" % metrics.group(1),
                                            timeout=10) as health:
                    assert health.status == 200 and health.read() == b"serving\n"
                r = grpcurl(addr, "baton.v1.Admin/ServerInfo")
                assert r.returncode != 0 and "Unauthenticated" in r.stderr, r.stdout + r.stderr
                r = grpcurl("-H", "authorization: Bearer " + TOKEN, addr,
                            "baton.v1.Admin/ServerInfo")
                assert r.returncode == 0, r.stderr
            assert os.listdir(mounts["/var/lib/baton"]), "nothing written to the data volume"
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
            assert rc == 0, "batond exited %d after SIGTERM:\n%s" % (rc, proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        print("ok: batond accepts the chart's command line (%s) and serves:\n    %s"
              % (label, " ".join(c["command"] + c["args"])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    batond = os.path.abspath(sys.argv[1])
    check_lint()
    check_template()
    run_batond(batond, [], "default values")
    run_batond(batond, ["metrics.enabled=true", "config.max_sessions=5000",
                        "config.snapshot_mb=0.5", "config.log_level=debug"],
               "metrics on, config entries set")
    check_tls_template()
    run_batond(batond, TLS_SETS, "TLS, policy and tokens", tls=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
