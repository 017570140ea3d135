"""Kubernetes' protobuf encoding, read (pure), for the one body kubectl sends that way to this server: a Namespace
(`kubectl create namespace` posts it with its typed client, which sends built-in kinds as protobuf and never
falls back to JSON). The envelope is the 4 bytes `k8s\\0` and a runtime.Unknown (typeMeta 1, raw 2); a Namespace is
metadata 1, spec 2 (finalizers 1); ObjectMeta's fields are numbered as in k8s.io/apimachinery's generated.proto.
Anything else is refused (415), so the client's error names the format."""

MAGIC = b"k8s\x00"
_META_STRINGS = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
_META_MAPS = {11: "labels", 12: "annotations"}


class ProtobufError(ValueError):
    pass


def _varint(data, at):
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ProtobufError("a varint runs past the end")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data):
    """[(field number, wire type, value)] of one message: varints as ints, length-delimited fields as bytes."""
    out, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise ProtobufError("a field runs past the end")
            value, at = data[at:at + size], at + size
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        else:
            raise ProtobufError(f"wire type {wire} is not read here")
        out.append((number, wire, value))
    return out


def _text(value):
    try:
        return value.decode("utf-8")
    except (AttributeError, UnicodeDecodeError):
        raise ProtobufError("a string field is not UTF-8") from None


def _metadata(data):
    meta = {}
    for number, _, value in fields(data):
        if number in _META_STRINGS:
            meta[_META_STRINGS[number]] = _text(value)
        elif number in _META_MAPS:
            entry = {n: _text(v) for n, _, v in fields(value)}
            meta.setdefault(_META_MAPS[number], {})[entry.get(1, "")] = entry.get(2, "")
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
    return meta


def decode_namespace(body):
    """A protobuf-encoded Namespace -> its JSON form. Raises ProtobufError for anything else."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body (no k8s\\0 prefix)")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC):])}
    type_meta = {n: _text(v) for n, _, v in fields(envelope.get(1, b""))}
    if (type_meta.get(1), type_meta.get(2)) != ("v1", "Namespace"):
        raise ProtobufError(f"a {type_meta.get(1)} {type_meta.get(2)} in protobuf: only v1 Namespace is read so")
    obj = {"apiVersion": "v1", "kind": "Namespace"}
    for number, _, value in fields(envelope.get(2, b"")):
        if number == 1:
            obj["metadata"] = _metadata(value)
        elif number == 2:
            finalizers = [_text(v) for n, _, v in fields(value) if n == 1]
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}
    return obj
