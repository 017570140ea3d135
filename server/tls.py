"""The server's certificates and the kubeconfig that trusts them: a self-signed CA made on first start, a server
certificate for 127.0.0.1, ::1, localhost and the bind address, both kept in the data directory (keys 0600)."""

import datetime
import ipaddress
import os

from ringrun.launcher import files

CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.crt", "server.key"


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _sans(hosts):
    from cryptography import x509

    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def ensure(data_dir, hosts):
    """Paths (ca, cert, key): made when missing, or when the server certificate does not cover `hosts`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    paths = {n: os.path.join(data_dir, n) for n in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY)}
    now = datetime.datetime.now(datetime.timezone.utc)
    hosts = sorted(set(hosts) | {"127.0.0.1", "::1", "localhost"})
    if os.path.exists(paths[CA_CERT]) and os.path.exists(paths[CA_KEY]):
        ca_cert = _load(paths[CA_CERT], x509.load_pem_x509_certificate, "a PEM certificate")
        ca_key = _load(paths[CA_KEY], lambda data: serialization.load_pem_private_key(data, None), "a PEM private key")
    else:
        ca_key = _key()
        ca_cert = (x509.CertificateBuilder().subject_name(_name("ringrun-ca")).issuer_name(_name("ringrun-ca"))
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                  critical=True)
                   .sign(ca_key, hashes.SHA256()))
        files.write_atomic(paths[CA_KEY], _pem_key(ca_key), mode=0o600)
        files.write_atomic(paths[CA_CERT], ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o600)
        for stale in (paths[SERVER_CERT], paths[SERVER_KEY]):
            if os.path.exists(stale):
                os.unlink(stale)
    cert = None
    if os.path.exists(paths[SERVER_CERT]) and os.path.exists(paths[SERVER_KEY]):
        try:  # the server certificate is made again when it cannot be read
            with open(paths[SERVER_CERT], "rb") as handle:
                cert = x509.load_pem_x509_certificate(handle.read())
        except ValueError:
            cert = None
    if cert is not None:
        covered = {str(v) for v in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                   .get_values_for_type(x509.IPAddress)} | set(cert.extensions.get_extension_for_class(
                       x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
        if set(str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts) <= covered and \
                cert.not_valid_after_utc > now + datetime.timedelta(days=1):
            return paths[CA_CERT], paths[SERVER_CERT], paths[SERVER_KEY]
    key = _key()
    cert = (x509.CertificateBuilder().subject_name(_name("ringrun-serve")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(_sans(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files.write_atomic(paths[SERVER_KEY], _pem_key(key), mode=0o600)
    files.write_atomic(paths[SERVER_CERT], cert.public_bytes(serialization.Encoding.PEM), mode=0o600)
    return paths[CA_CERT], paths[SERVER_CERT], paths[SERVER_KEY]


def _load(path, load, what):
    """load(bytes of `path`); SetupError naming the file when it is not `what`."""
    from ringrun.runtime.errors import SetupError

    try:
        with open(path, "rb") as handle:
            return load(handle.read())
    except (ValueError, TypeError) as exc:
        raise SetupError(f"{path}: not {what} ({exc}); remove ca.crt and ca.key to make a new CA (every client then "
                         "needs the new kubeconfig)") from None
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from None


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def kubeconfig(server_url, ca_path, token, user="admin"):
    """The kubeconfig text (YAML) for `server_url`, trusting the CA at `ca_path`, with `token`."""
    import base64

    import yaml

    with open(ca_path, "rb") as handle:
        ca = base64.b64encode(handle.read()).decode("ascii")
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "ringrun",
           "clusters": [{"name": "ringrun", "cluster": {"server": server_url, "certificate-authority-data": ca}}],
           "users": [{"name": user, "user": {"token": token}}],
           "contexts": [{"name": "ringrun", "context": {"cluster": "ringrun", "user": user, "namespace": "default"}}],
           "preferences": {}}
    return yaml.safe_dump(doc, sort_keys=False)
