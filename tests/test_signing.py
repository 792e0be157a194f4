"""Signers against Binance's documented vectors and the public keys."""

from __future__ import annotations

import base64
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from aiocea_trio._params import encode_params
from aiocea_trio.signing import Ed25519Signer, HmacSigner, RsaSigner, Signer

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ORDER = {
    "symbol": "LTCBTC",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": 1,
    "price": 0.1,
    "recvWindow": 5000,
    "timestamp": 1499827319559,
}


def test_hmac_documented_vector() -> None:
    payload = encode_params(ORDER)
    assert payload == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
    )
    assert HmacSigner(SECRET).sign(payload) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_hmac_non_ascii_vector_is_signed_over_the_percent_encoded_payload() -> None:
    payload = encode_params({**ORDER, "symbol": "１２３４５６"})
    assert payload.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
    assert HmacSigner(SECRET).sign(payload) == (
        "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_hmac_query_plus_body_vector() -> None:
    payload = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
        "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert HmacSigner(SECRET.encode()).sign(payload) == (
        "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    )


def test_hmac_rejects_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="empty"):
        HmacSigner("")


def test_ed25519_self_generated_vector() -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    payload = (
        "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"
        "&timestamp=1668481559918&recvWindow=5000"
    )
    signature = Ed25519Signer(key).sign(payload)
    expected = (
        "m5loLRxgkb9HyW0wkZ4KNrpck881bx5D0OrKNnPklvk4tlGjEJkhiP9DoyC0sc1lXA/TWugjVPrMb/bfNdmdBw=="
    )
    assert unquote(signature) == expected
    assert "/" not in signature
    assert "=" not in signature


def _pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey, password: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.mark.parametrize("form", ["object", "pem-str", "pem-bytes", "encrypted"])
def test_ed25519_signature_verifies_with_the_public_key(form: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = {
        "object": lambda: Ed25519Signer(key),
        "pem-str": lambda: Ed25519Signer(_pem(key, None).decode()),
        "pem-bytes": lambda: Ed25519Signer(_pem(key, None)),
        "encrypted": lambda: Ed25519Signer(_pem(key, b"pw"), password="pw"),
    }[form]()
    payload = "symbol=BTCUSDT&timestamp=1&recvWindow=5000"
    raw = base64.b64decode(unquote(signer.sign(payload)))
    key.public_key().verify(raw, payload.encode())  # raises if wrong
    assert "BEGIN PUBLIC KEY" in signer.public_key_pem()


@pytest.mark.parametrize("form", ["object", "pem-str", "encrypted"])
def test_rsa_signature_verifies_with_the_public_key(form: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = {
        "object": lambda: RsaSigner(key),
        "pem-str": lambda: RsaSigner(_pem(key, None).decode()),
        "encrypted": lambda: RsaSigner(_pem(key, b"pw"), password=b"pw"),
    }[form]()
    payload = "symbol=BTCUSDT&side=SELL&timestamp=1668481559918&recvWindow=5000"
    signature = signer.sign(payload)
    assert "+" not in signature
    assert "/" not in signature
    raw = base64.b64decode(unquote(signature))
    key.public_key().verify(raw, payload.encode(), padding.PKCS1v15(), hashes.SHA256())


def test_wrong_key_types_and_passwords_are_clear_errors() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(TypeError, match="Ed25519"):
        Ed25519Signer(_pem(rsa_key, None))
    with pytest.raises(TypeError, match="RSA"):
        RsaSigner(ed_key)
    with pytest.raises(ValueError, match="password") as info:
        Ed25519Signer(_pem(ed_key, b"right"), password="wrong")
    assert info.value.__cause__ is None
    with pytest.raises(ValueError, match="PEM"):
        RsaSigner("not a key")


def test_no_signer_shows_its_key_material() -> None:
    ed_key = ed25519.Ed25519PrivateKey.generate()
    pem = _pem(ed_key, None).decode()
    signers = [HmacSigner(SECRET), Ed25519Signer(pem)]
    for signer in signers:
        assert isinstance(signer, Signer)
        assert SECRET not in repr(signer)
        assert SECRET not in str(signer)
        assert "redacted" in repr(signer)
    body = "".join(pem.splitlines()[1:-1])
    assert body[:20] not in repr(signers[1])


def test_param_encoding_is_exact() -> None:
    assert encode_params(None) == ""
    assert encode_params({"a": None, "b": True, "c": False}) == "b=true&c=false"
    assert encode_params({"q": 1e-05, "p": 12345678.5}) == "q=0.00001&p=12345678.5"
    assert encode_params({"symbols": ["BTCUSDT", "ETHUSDT"]}) == (
        "symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D"
    )
    assert encode_params({"x": "a b/c"}) == "x=a%20b%2Fc"
