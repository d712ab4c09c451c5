#!/usr/bin/env python3
"""Drives a running TYDFS S3 gateway with real S3 clients (boto3 and awscli) and checks every
answer: buckets, objects, ranges, listings, multipart, copies, presigned URLs and the errors.

    scripts/s3-clients-check.py --endpoint http://127.0.0.1:9000 --key ID --secret SECRET [--ca-file ca.pem]

Exits 0 when every check passed; prints each failure and exits 1 otherwise. Run by
Tests/TYDFSIntegrationTests/S3GatewayTests.swift against a fresh cluster.
"""
import argparse
import base64
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

import boto3
import botocore
from botocore.config import Config

parser = argparse.ArgumentParser()
parser.add_argument("--endpoint", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--secret", required=True)
parser.add_argument("--ca-file")
parser.add_argument("--skip-awscli", action="store_true")
args = parser.parse_args()

failures = []
checks = 0


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        failures.append(what)
        print("FAIL:", what, flush=True)


def error_code(call):
    """The S3 error code and HTTP status a call fails with, or (None, None)."""
    try:
        call()
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, None


def client(secret=None):
    return boto3.client(
        "s3", endpoint_url=args.endpoint, aws_access_key_id=args.key, aws_secret_access_key=secret or args.secret,
        region_name="us-east-1", verify=args.ca_file if args.ca_file else True,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}))


s3 = client()
rng = random.Random(20261129)


def blob(size):
    return bytes(rng.getrandbits(8) for _ in range(size)) if size < 4096 else os.urandom(size)


# Buckets.
s3.create_bucket(Bucket="alpha")
s3.head_bucket(Bucket="alpha")
check("alpha" in [b["Name"] for b in s3.list_buckets()["Buckets"]], "ListBuckets names the new bucket")
check(error_code(lambda: s3.create_bucket(Bucket="alpha")) == ("BucketAlreadyOwnedByYou", 409), "CreateBucket twice")
check(error_code(lambda: s3.create_bucket(Bucket="Bad_Name")) == ("InvalidBucketName", 400), "an invalid bucket name")
check(error_code(lambda: s3.head_bucket(Bucket="nosuchbucket"))[1] == 404, "HeadBucket of a missing bucket")
check(error_code(lambda: s3.list_objects_v2(Bucket="nosuchbucket")) == ("NoSuchBucket", 404), "listing a missing bucket")
check(s3.get_bucket_location(Bucket="alpha").get("LocationConstraint") in (None, "", "us-east-1"), "GetBucketLocation")

# Objects, with 100-continue answered (botocore waits a second for it on every upload).
data = blob(1000)
started = time.monotonic()
for _ in range(5):
    put = s3.put_object(Bucket="alpha", Key="small", Body=data)
per_put = (time.monotonic() - started) / 5
check(per_put < 0.5, f"a 1 KB put took {per_put:.2f} s; without 100 Continue botocore waits 1 s")
check(put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest(), f"the ETag is the MD5, as in S3: {put['ETag']}")
# botocore sends a CRC32 with every put (a header over HTTP, an aws-chunked trailer over HTTPS).
crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
with_checksum = s3.head_object(Bucket="alpha", Key="small", ChecksumMode="ENABLED")
check(with_checksum.get("ChecksumCRC32") == crc, f"the CRC32 sent is kept and returned on request: {with_checksum.get('ChecksumCRC32')} vs {crc}")
check("ChecksumCRC32" not in s3.head_object(Bucket="alpha", Key="small"), "checksums only when asked for")
check("ContentEncoding" not in with_checksum, "aws-chunked is not kept as the object's Content-Encoding")
check(error_code(lambda: s3.put_object(Bucket="alpha", Key="bad checksum", Body=b"hello", ChecksumCRC32="AAAAAA==")) == ("BadDigest", 400),
      "a wrong x-amz-checksum-crc32")
check(error_code(lambda: s3.head_object(Bucket="alpha", Key="bad checksum"))[1] == 404, "a body that failed its checksum was not stored")
c64 = s3.put_object(Bucket="alpha", Key="crc64", Body=b"123456789", ChecksumAlgorithm="CRC64NVME")
check(c64.get("ChecksumCRC64NVME") in (None, base64.b64encode(bytes.fromhex("AE8B14860A799888")).decode()), "CRC64NVME")
check(s3.head_object(Bucket="alpha", Key="crc64", ChecksumMode="ENABLED").get("ChecksumCRC64NVME") == base64.b64encode(bytes.fromhex("AE8B14860A799888")).decode(),
      "a CRC64NVME checksum is verified and kept")
s3.delete_object(Bucket="alpha", Key="crc64")
got = s3.get_object(Bucket="alpha", Key="small")
check(got["Body"].read() == data, "GetObject returns the bytes put")
check(got["ContentLength"] == 1000 and got["ETag"] == put["ETag"], "GetObject's length and ETag")
head = s3.head_object(Bucket="alpha", Key="small")
check(head["ContentLength"] == 1000 and head["ETag"] == put["ETag"] and head["LastModified"].year >= 2026, "HeadObject")
check(error_code(lambda: s3.get_object(Bucket="alpha", Key="missing")) == ("NoSuchKey", 404), "GetObject of a missing key")
check(error_code(lambda: s3.head_object(Bucket="alpha", Key="missing"))[1] == 404, "HeadObject of a missing key")
check(error_code(lambda: s3.put_object(Bucket="nosuchbucket", Key="k", Body=b"x")) == ("NoSuchBucket", 404), "a put into a missing bucket")
empty = s3.put_object(Bucket="alpha", Key="empty", Body=b"")
check(s3.get_object(Bucket="alpha", Key="empty")["Body"].read() == b"", "an empty object")
s3.put_object(Bucket="alpha", Key="typed", Body=b"{}", ContentType="application/json", Metadata={"colour": "blue", "n": "1"}, CacheControl="no-cache")
typed = s3.head_object(Bucket="alpha", Key="typed")
check(typed["ContentType"] == "application/json" and typed["Metadata"] == {"colour": "blue", "n": "1"} and typed.get("CacheControl") == "no-cache",
      f"content type and metadata come back: {typed['ContentType']}, {typed['Metadata']}")
check(error_code(lambda: s3.get_object(Bucket="alpha", Key="small", IfNoneMatch=put["ETag"]))[1] == 304, "If-None-Match with the ETag: 304")
check(error_code(lambda: s3.get_object(Bucket="alpha", Key="small", IfMatch='"nope"')) == ("PreconditionFailed", 412), "If-Match with another ETag: 412")

# Ranges.
for header, expected in [("bytes=0-9", data[:10]), ("bytes=990-", data[990:]), ("bytes=-5", data[-5:]), ("bytes=995-5000", data[995:])]:
    part = s3.get_object(Bucket="alpha", Key="small", Range=header)
    check(part["Body"].read() == expected and part["ResponseMetadata"]["HTTPStatusCode"] == 206, f"Range {header}")
    check(part["ContentRange"].startswith("bytes ") and part["ContentRange"].endswith("/1000"), f"Content-Range for {header}")
check(error_code(lambda: s3.get_object(Bucket="alpha", Key="small", Range="bytes=1000-")) == ("InvalidRange", 416), "a range past the end")

# Keys with spaces, '+', '%', non-ASCII; listings with pagination and delimiters.
keys = ["a b/c+d.txt", "a b/é ü.bin", "plain", "dir/x/1", "dir/x/2", "dir/y", "dir/z+%20", "top+plus", "ünï/cödé"]
for key in keys:
    s3.put_object(Bucket="alpha", Key=key, Body=key.encode())
for key in keys:
    check(s3.get_object(Bucket="alpha", Key=key)["Body"].read() == key.encode(), f"round trip of key {key!r}")
all_keys = sorted(keys + ["small", "empty", "typed"], key=lambda k: k.encode())
seen = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="alpha", PaginationConfig={"PageSize": 2}):
    seen += [o["Key"] for o in page.get("Contents", [])]
check(seen == all_keys, f"ListObjectsV2 in pages of 2 visits every key once, in order: {seen}")
listing = s3.list_objects_v2(Bucket="alpha", Delimiter="/")
check([p["Prefix"] for p in listing.get("CommonPrefixes", [])] == ["a b/", "dir/", "ünï/"], f"common prefixes: {listing.get('CommonPrefixes')}")
check([o["Key"] for o in listing.get("Contents", [])] == ["empty", "plain", "small", "top+plus", "typed"], "keys beside the common prefixes")
check([o["ETag"] for o in listing["Contents"] if o["Key"] == "small"] == [put["ETag"]], "listings carry the ETag")
nested = s3.list_objects_v2(Bucket="alpha", Prefix="dir/", Delimiter="/")
check([p["Prefix"] for p in nested.get("CommonPrefixes", [])] == ["dir/x/"] and [o["Key"] for o in nested["Contents"]] == ["dir/y", "dir/z+%20"], "a prefix and a delimiter")
check(s3.list_objects_v2(Bucket="alpha", Prefix="dir/x")["KeyCount"] == 2, "a prefix inside a folder name")
check(s3.list_objects_v2(Bucket="alpha", StartAfter="plain")["Contents"][0]["Key"] == "small", "StartAfter")
v1_seen, marker = [], ""
while True:
    page = s3.list_objects(Bucket="alpha", Marker=marker, MaxKeys=3)
    v1_seen += [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    marker = v1_seen[-1]
check(v1_seen == all_keys, "ListObjects v1 with Marker visits every key once")

# Keys are bytes: two spellings of one key (é as one character; e and a combining accent) are two
# objects, and a key may begin with a combining accent (Swift joins it to the / before it).
s3.create_bucket(Bucket="spellings")
spelled = ["caf\u00e9", "cafe\u0301", "\u0301first", "d/\u0301x"]
for key in spelled:
    s3.put_object(Bucket="spellings", Key=key, Body=key.encode())
for key in spelled:
    check(s3.get_object(Bucket="spellings", Key=key)["Body"].read() == key.encode(), f"round trip of key {key.encode()!r}")
listed = [o["Key"] for o in s3.list_objects_v2(Bucket="spellings")["Contents"]]
check(listed == sorted(spelled, key=lambda k: k.encode()), f"two spellings listed as two keys, in byte order: {listed!r}")
s3.copy_object(Bucket="spellings", Key="copied", CopySource={"Bucket": "spellings", "Key": "\u0301first"})
check(s3.get_object(Bucket="spellings", Key="copied")["Body"].read() == "\u0301first".encode(), "CopyObject from a key that begins with an accent")
s3.delete_object(Bucket="spellings", Key="cafe\u0301")
left = [o["Key"] for o in s3.list_objects_v2(Bucket="spellings")["Contents"]]
check(left == sorted(["caf\u00e9", "\u0301first", "d/\u0301x", "copied"], key=lambda k: k.encode()), f"deleting one spelling leaves the other: {left!r}")
check(error_code(lambda: s3.put_object(Bucket="spellings", Key=".tydfs-multipart/\u0301x/y", Body=b"1"))[1] == 400,
      "the multipart folder is reserved however the next name begins")

# DeleteObjects and DeleteObject.
result = s3.delete_objects(Bucket="alpha", Delete={"Objects": [{"Key": "dir/x/1"}, {"Key": "dir/x/2"}, {"Key": "never-was"}]})
check(sorted(d["Key"] for d in result.get("Deleted", [])) == ["dir/x/1", "dir/x/2", "never-was"], "DeleteObjects")
check(s3.list_objects_v2(Bucket="alpha", Prefix="dir/x").get("KeyCount") == 0, "deleted keys are gone")
s3.delete_object(Bucket="alpha", Key="never-was")

# CopyObject.
copied = s3.copy_object(Bucket="alpha", Key="copy of small", CopySource={"Bucket": "alpha", "Key": "small"})
check(s3.get_object(Bucket="alpha", Key="copy of small")["Body"].read() == data, "CopyObject copies the bytes")
check(copied["CopyObjectResult"]["ETag"] == put["ETag"], "a copy has the source's ETag")
s3.copy_object(Bucket="alpha", Key="typed copy", CopySource={"Bucket": "alpha", "Key": "typed"})
check(s3.head_object(Bucket="alpha", Key="typed copy")["Metadata"] == {"colour": "blue", "n": "1"}, "a copy keeps the metadata (COPY)")
s3.copy_object(Bucket="alpha", Key="typed copy", CopySource={"Bucket": "alpha", "Key": "typed"}, MetadataDirective="REPLACE",
               Metadata={"colour": "red"}, ContentType="text/plain")
replaced = s3.head_object(Bucket="alpha", Key="typed copy")
check(replaced["Metadata"] == {"colour": "red"} and replaced["ContentType"] == "text/plain", "REPLACE takes the request's metadata")
s3.delete_objects(Bucket="alpha", Delete={"Objects": [{"Key": "typed copy"}]})

# Multipart: parts sent out of order (joined by moving chunks) and parts of uneven sizes (copied).
for key, sizes in [("mp-even", [5 << 20, 5 << 20, 1 << 20]), ("mp-uneven", [6 << 20, 5 << 20, 3 << 20])]:
    upload = s3.create_multipart_upload(Bucket="alpha", Key=key)["UploadId"]
    parts = [blob(size) for size in sizes]
    etags = {}
    for number in [3, 1, 2]:
        etags[number] = s3.upload_part(Bucket="alpha", Key=key, UploadId=upload, PartNumber=number, Body=parts[number - 1])["ETag"]
    listed = s3.list_parts(Bucket="alpha", Key=key, UploadId=upload)["Parts"]
    check([p["PartNumber"] for p in listed] == [1, 2, 3] and [p["Size"] for p in listed] == sizes, f"ListParts of {key}")
    check(error_code(lambda: s3.complete_multipart_upload(
        Bucket="alpha", Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"ffffffff"'}]}))[0] == "InvalidPart", "completing with a wrong ETag")
    check(all(etags[n] == '"%s"' % hashlib.md5(parts[n - 1]).hexdigest() for n in etags), "part ETags are their MD5s")
    done = s3.complete_multipart_upload(Bucket="alpha", Key=key, UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in [1, 2, 3]]})
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    check(done["ETag"] == f'"{expected}"' and s3.head_object(Bucket="alpha", Key=key)["ETag"] == f'"{expected}"', f"a multipart ETag as S3 makes it: {done['ETag']}")
    whole = b"".join(parts)
    check(s3.get_object(Bucket="alpha", Key=key)["Body"].read() == whole, f"multipart object {key} is byte-exact")
    check(s3.get_object(Bucket="alpha", Key=key, Range=f"bytes={(5 << 20) - 3}-{(5 << 20) + 2}")["Body"].read() == whole[(5 << 20) - 3:(5 << 20) + 3],
          f"a range across the parts of {key}")
check(error_code(lambda: s3.upload_part(Bucket="alpha", Key="k", UploadId="0" * 32, PartNumber=1, Body=b"x"))[0] == "NoSuchUpload", "a part for no upload")
small_parts = s3.create_multipart_upload(Bucket="alpha", Key="tiny-parts")["UploadId"]
tags = [s3.upload_part(Bucket="alpha", Key="tiny-parts", UploadId=small_parts, PartNumber=n, Body=b"x" * 100)["ETag"] for n in (1, 2)]
check(error_code(lambda: s3.complete_multipart_upload(Bucket="alpha", Key="tiny-parts", UploadId=small_parts, MultipartUpload={
    "Parts": [{"PartNumber": n, "ETag": tags[n - 1]} for n in (1, 2)]}))[0] == "EntityTooSmall", "parts below 5 MiB")
check(error_code(lambda: s3.upload_part(Bucket="alpha", Key="tiny-parts", UploadId=small_parts, PartNumber=10001, Body=b"x"))[0] == "InvalidArgument",
      "a part number out of range")
check([u["UploadId"] for u in s3.list_multipart_uploads(Bucket="alpha").get("Uploads", [])] == [small_parts], "ListMultipartUploads")
for delimiter in [{}, {"Delimiter": "/"}]:
    hidden = s3.list_objects_v2(Bucket="alpha", Prefix=".tydfs-multipart/", **delimiter)
    check(hidden["KeyCount"] == 0, f"an upload under way is in no listing, even one of its folder's prefix: {hidden.get('Contents')} {hidden.get('CommonPrefixes')}")
s3.abort_multipart_upload(Bucket="alpha", Key="tiny-parts", UploadId=small_parts)
check(s3.list_multipart_uploads(Bucket="alpha").get("Uploads", []) == [], "an aborted upload is gone")
check(".tydfs-multipart" not in str(s3.list_objects_v2(Bucket="alpha")), "uploads under way never show in listings")

# Presigned URLs.
url = s3.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "a b/c+d.txt"}, ExpiresIn=60)
context = None
if args.ca_file:
    import ssl
    context = ssl.create_default_context(cafile=args.ca_file)
check(urllib.request.urlopen(url, context=context).read() == b"a b/c+d.txt", "a presigned GET")
put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "alpha", "Key": "presigned put"}, ExpiresIn=60)
urllib.request.urlopen(urllib.request.Request(put_url, data=b"via url", method="PUT"), context=context).read()
check(s3.get_object(Bucket="alpha", Key="presigned put")["Body"].read() == b"via url", "a presigned PUT")
# A presigned PUT cannot be turned into a copy of another object by an unsigned header.
smuggle = s3.generate_presigned_url("put_object", Params={"Bucket": "alpha", "Key": "smuggled"}, ExpiresIn=60)
try:
    urllib.request.urlopen(urllib.request.Request(smuggle, data=b"", method="PUT", headers={"x-amz-copy-source": "alpha/small"}), context=context)
    check(False, "an unsigned x-amz-copy-source on a presigned PUT is refused")
except urllib.error.HTTPError as error:
    check(error.code == 403 and b"were not signed" in error.read(), "an unsigned x-amz-copy-source on a presigned PUT is refused")
check(error_code(lambda: s3.head_object(Bucket="alpha", Key="smuggled"))[1] == 404, "and nothing was copied")
tampered = url.replace("a%20b", "a%20c")
try:
    urllib.request.urlopen(tampered, context=context)
    check(False, "a tampered presigned URL is refused")
except urllib.error.HTTPError as error:
    check(error.code == 403 and b"SignatureDoesNotMatch" in error.read(), "a tampered presigned URL gets SignatureDoesNotMatch")

# Conditional writes.
check(error_code(lambda: s3.put_object(Bucket="alpha", Key="small", Body=b"other", IfNoneMatch="*")) == ("PreconditionFailed", 412),
      "If-None-Match: * on an existing key")
s3.put_object(Bucket="alpha", Key="created once", Body=b"1", IfNoneMatch="*")
check(error_code(lambda: s3.put_object(Bucket="alpha", Key="small", Body=b"other", IfMatch='"0123"')) == ("PreconditionFailed", 412),
      "If-Match with another ETag on a put")
check(s3.get_object(Bucket="alpha", Key="small")["Body"].read() == data, "a refused conditional put changed nothing")
ranged = s3.create_multipart_upload(Bucket="alpha", Key="ranged copy")["UploadId"]
check(error_code(lambda: s3.upload_part_copy(Bucket="alpha", Key="ranged copy", UploadId=ranged, PartNumber=1,
                                            CopySource={"Bucket": "alpha", "Key": "small"}, CopySourceRange="bytes=0-5000")) == ("InvalidRange", 416),
      "a copy range past the end of the source")
part = s3.upload_part_copy(Bucket="alpha", Key="ranged copy", UploadId=ranged, PartNumber=1, CopySource={"Bucket": "alpha", "Key": "small"},
                           CopySourceRange="bytes=10-19")
check(part["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(data[10:20]).hexdigest(), "UploadPartCopy of a range")
s3.abort_multipart_upload(Bucket="alpha", Key="ranged copy", UploadId=ranged)
check(error_code(lambda: s3.put_object(Bucket="alpha", Key=".tydfs-multipart/x/", Body=b""))[1] == 400, "the uploads folder is not a key")

# A sub-resource of an object is never the object itself: PUT ?tagging must not overwrite it,
# DELETE ?tagging must not delete it.
check(error_code(lambda: s3.put_object_tagging(Bucket="alpha", Key="small", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}))[1] == 501,
      "PUT ?tagging is not implemented")
check(error_code(lambda: s3.delete_object_tagging(Bucket="alpha", Key="small"))[1] == 501, "DELETE ?tagging is not implemented")
check(error_code(lambda: s3.get_object_acl(Bucket="alpha", Key="small"))[1] == 501, "GET ?acl is not implemented")
check(s3.get_object(Bucket="alpha", Key="small")["Body"].read() == data, "and the object is untouched")

# Wrong credentials and bad input.
check(error_code(lambda: client(secret="wrong" * 8).list_buckets()) == ("SignatureDoesNotMatch", 403), "a wrong secret")
check(error_code(lambda: s3.put_object(Bucket="alpha", Key="a/../b", Body=b"x"))[1] == 400, "a key with ..")
check(error_code(lambda: s3.put_object(Bucket="alpha", Key="k" * 1025, Body=b"x"))[0] == "KeyTooLongError", "a key over 1024 bytes")
check(error_code(lambda: s3.delete_bucket(Bucket="alpha")) == ("BucketNotEmpty", 409), "deleting a bucket that holds objects")

# Bad input on the wire, signed as botocore signs: each gets an S3 error, never a 5xx.
def signed(method, path, body=b"", headers=None):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    request = AWSRequest(method=method, url=args.endpoint + path, data=body, headers=dict(headers or {}, **{"Content-Length": str(len(body))}))
    S3SigV4Auth(Credentials(args.key, args.secret), "s3", "us-east-1").add_auth(request)
    return request


def send(method, path, body=b"", headers=None, sent=None):
    """Sends a signed request over a socket of its own, `sent` bytes of the body (default all),
    then closes its side; returns the status and body of the answer (or None if none came)."""
    import http.client
    import ssl
    from urllib.parse import urlsplit
    request = signed(method, path, body, headers)
    address = urlsplit(args.endpoint)
    if address.scheme == "https":
        connection = http.client.HTTPSConnection(address.hostname, address.port, context=ssl.create_default_context(cafile=args.ca_file), timeout=30)
    else:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in request.headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body[: len(body) if sent is None else sent])
    if sent is not None:
        connection.sock.shutdown(1)
    try:
        answer = connection.getresponse()
        return answer.status, answer.read()
    except (ConnectionError, http.client.HTTPException):
        return None, b""
    finally:
        connection.close()


status, answer = send("POST", "/alpha?delete", b"<Delete><Object><Key>x</Key></Obj")
check(status == 400 and b"<Code>MalformedXML</Code>" in answer, f"malformed XML: {status} {answer[:200]}")
status, answer = send("PUT", "/alpha/truncated", b"y" * 100_000, sent=50_000)
check(status in (None, 400) and status != 500, f"a body cut short: {status} {answer[:200]}")
check(error_code(lambda: s3.head_object(Bucket="alpha", Key="truncated"))[1] == 404, "a body cut short stores nothing")
status, answer = send("PUT", "/alpha/wrong-sha", b"abc", headers={"x-amz-meta-a": "1"})
check(status == 200, f"a signed put on the wire: {status} {answer[:200]}")
tampered = signed("PUT", "/alpha/wrong-sha", b"abc")
import http.client
from urllib.parse import urlsplit
if urlsplit(args.endpoint).scheme == "http":
    connection = http.client.HTTPConnection(urlsplit(args.endpoint).hostname, urlsplit(args.endpoint).port, timeout=30)
    connection.request("PUT", "/alpha/wrong-sha", body=b"abd", headers=dict(tampered.headers.items()))
    answer = connection.getresponse()
    check(answer.status == 400 and b"XAmzContentSHA256Mismatch" in answer.read(), "a body that differs from its signed SHA-256")
    check(s3.get_object(Bucket="alpha", Key="wrong-sha")["Body"].read() == b"abc", "and the object it would replace is untouched")
status, answer = send("GET", "/alpha/%ZZ")
check(status == 400, f"a broken %-escape in the path: {status}")

# awscli, as a user runs it.
if not args.skip_awscli:
    folder = tempfile.mkdtemp(prefix="tydfs-awscli-")
    environment = dict(os.environ, AWS_ACCESS_KEY_ID=args.key, AWS_SECRET_ACCESS_KEY=args.secret, AWS_DEFAULT_REGION="us-east-1")
    if args.ca_file:
        environment["AWS_CA_BUNDLE"] = args.ca_file

    def aws(*words):
        done = subprocess.run(["aws", "--endpoint-url", args.endpoint, "s3", *words], env=environment, capture_output=True, text=True)
        return done.returncode, done.stdout + done.stderr

    check(aws("mb", "s3://cli")[0] == 0, "aws s3 mb")
    tree = os.path.join(folder, "tree")
    os.makedirs(os.path.join(tree, "nested", "deeper"))
    files = {"small.txt": blob(100), "nested/big.bin": os.urandom(20 << 20), "nested/deeper/sp ace ü.txt": b"unicode", "empty": b""}
    for name, content in files.items():
        with open(os.path.join(tree, name), "wb") as out:
            out.write(content)
    code, text = aws("cp", os.path.join(tree, "nested/big.bin"), "s3://cli/big.bin")
    check(code == 0, f"aws s3 cp of 20 MiB up (multipart): {text}")
    code, text = aws("cp", "s3://cli/big.bin", os.path.join(folder, "big.back"))
    check(code == 0 and open(os.path.join(folder, "big.back"), "rb").read() == files["nested/big.bin"], f"aws s3 cp down, byte-exact: {text}")
    code, text = aws("sync", tree, "s3://cli/tree")
    check(code == 0 and text.count("upload:") == 4, f"aws s3 sync up: {text}")
    code, text = aws("sync", tree, "s3://cli/tree")
    check(code == 0 and "upload:" not in text, f"a second sync transfers nothing: {text}")
    code, text = aws("ls", "--recursive", "s3://cli")
    check(code == 0 and text.count("\n") == 5, f"aws s3 ls --recursive: {text}")
    copy = os.path.join(folder, "copy")
    code, text = aws("sync", "s3://cli/tree", copy)
    check(code == 0 and subprocess.run(["diff", "-r", tree, copy]).returncode == 0, f"aws s3 sync down, diff -r clean: {text}")
    code, text = aws("cp", "s3://cli/big.bin", "s3://cli/big-copy.bin")
    check(code == 0, f"aws s3 cp S3 to S3 over 8 MiB (UploadPartCopy): {text}")
    code, text = aws("mv", "s3://cli/big-copy.bin", "s3://cli/moved.bin")
    code2, _ = aws("cp", "s3://cli/moved.bin", os.path.join(folder, "moved.back"))
    check(code == 0 and code2 == 0 and open(os.path.join(folder, "moved.back"), "rb").read() == files["nested/big.bin"], f"aws s3 mv: {text}")
    code, text = aws("rm", "--recursive", "s3://cli")
    check(code == 0, f"aws s3 rm --recursive: {text}")
    code, text = aws("rb", "s3://cli")
    check(code == 0, f"aws s3 rb: {text}")
    shutil.rmtree(folder)

print(f"{checks - len(failures)} of {checks} checks passed", flush=True)
sys.exit(1 if failures else 0)
