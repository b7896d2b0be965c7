//! OpenPGP signing keys generated in Rust for fixture repositories (no gpg binary).
//!
//! Keys are deterministic: the RNG is seeded from the key's name, and the creation time is
//! fixed at [`KEY_CREATED`], so the same name always gives the same fingerprint and the same
//! signatures (EdDSA signatures are deterministic too). By default a key is shaped like Debian's
//! archive keys: a certify-only primary key and a signing subkey that makes the signatures.

use std::io;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, EncryptionCaps, KeyType, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, SigningKey, Timestamp};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

/// Creation time of every test key: 2000-01-01T00:00:00Z.
pub const KEY_CREATED: i64 = 946_684_800;

/// Which algorithm and shape a [`TestKey`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestKeyOptions {
    /// RSA-2048 instead of Ed25519 (slower to generate; Debian's keys are RSA).
    pub rsa: bool,
    /// Sign with a subkey (like Debian) rather than with the primary key.
    pub signing_subkey: bool,
}

impl Default for TestKeyOptions {
    fn default() -> Self {
        TestKeyOptions {
            rsa: false,
            signing_subkey: true,
        }
    }
}

/// A secret OpenPGP key for signing fixture InRelease files.
#[derive(Debug, Clone)]
pub struct TestKey {
    name: String,
    secret: SignedSecretKey,
    public: SignedPublicKey,
    signing_subkey: bool,
}

fn other<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

impl TestKey {
    /// An Ed25519 key with a signing subkey, derived from `name`.
    pub fn generate(name: &str) -> Self {
        Self::generate_with(name, TestKeyOptions::default())
    }

    /// A key with explicit options, derived from `name`.
    pub fn generate_with(name: &str, opts: TestKeyOptions) -> Self {
        Self::try_generate(name, opts).expect("generating a test key")
    }

    fn try_generate(name: &str, opts: TestKeyOptions) -> io::Result<Self> {
        let seed: [u8; 32] = Sha256::digest(format!("himg test key {name} {opts:?}")).into();
        let mut rng = StdRng::from_seed(seed);
        let key_type = if opts.rsa {
            KeyType::Rsa(2048)
        } else {
            KeyType::Ed25519Legacy
        };
        let created = Timestamp::from_secs(KEY_CREATED as u32);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(key_type.clone())
            .can_certify(true)
            .can_sign(!opts.signing_subkey)
            .can_encrypt(EncryptionCaps::None)
            .created_at(created)
            .preferred_hash_algorithms([HashAlgorithm::Sha256].into_iter().collect())
            .primary_user_id(format!("{name} test archive key <{name}@test.invalid>"));
        if opts.signing_subkey {
            let mut sub = SubkeyParamsBuilder::default();
            sub.key_type(key_type)
                .can_sign(true)
                .can_encrypt(EncryptionCaps::None)
                .created_at(created);
            params.subkeys(vec![sub.build().map_err(other)?]);
        }
        let secret = params
            .build()
            .map_err(other)?
            .generate(&mut rng)
            .map_err(other)?;
        let public = SignedPublicKey::from(secret.clone());
        Ok(TestKey {
            name: name.to_string(),
            secret,
            public,
            signing_subkey: opts.signing_subkey,
        })
    }

    /// The name the key was generated from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Primary key fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.public.primary_key.fingerprint().as_bytes())
    }

    /// Fingerprint of the component that signs (the subkey, or the primary key).
    pub fn signing_fingerprint(&self) -> String {
        match self.secret.secret_subkeys.first() {
            Some(sub) if self.signing_subkey => hex::encode_upper(sub.key.fingerprint().as_bytes()),
            _ => self.fingerprint(),
        }
    }

    /// The public key as a binary keyring (`.gpg`).
    pub fn public_keyring(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.public
            .to_writer(&mut out)
            .expect("serialising a public key to memory");
        out
    }

    /// The public key ASCII-armored (`.asc`).
    pub fn public_armored(&self) -> String {
        self.public
            .to_armored_string(ArmorOptions::default())
            .expect("armoring a public key")
    }

    /// The secret key in binary form (to test that keyrings take public parts of secret keys).
    pub fn secret_key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.secret
            .to_writer(&mut out)
            .expect("serialising a secret key to memory");
        out
    }

    /// One detached signature over the CRLF-normalised text (type Text).
    fn signature(
        &self,
        normalized: &str,
        created: i64,
        hash: HashAlgorithm,
    ) -> io::Result<Signature> {
        let key: &dyn SigningKey = match self.secret.secret_subkeys.first() {
            Some(sub) if self.signing_subkey => &sub.key,
            _ => &self.secret.primary_key,
        };
        let mut config = SignatureConfig::v4(SignatureType::Text, key.algorithm(), hash);
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                u32::try_from(created).map_err(other)?,
            )))
            .map_err(other)?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))
                .map_err(other)?,
        ];
        config.unhashed_subpackets = vec![
            Subpacket::regular(SubpacketData::IssuerKeyId(key.legacy_key_id())).map_err(other)?,
        ];
        config
            .sign(&Box::new(key), &Password::empty(), normalized.as_bytes())
            .map_err(other)
    }

    /// Clearsigns `text` (an InRelease), signature dated one day after key creation.
    pub fn sign_cleartext(&self, text: &str) -> Vec<u8> {
        Self::sign_cleartext_many(&[self], text, KEY_CREATED + 86_400, HashAlgorithm::Sha256)
            .expect("clearsigning")
    }

    /// Clearsigns `text` with several keys (Debian signs with two or three), with the given
    /// signature time and hash algorithm (e.g. SHA-1 to test that it is refused).
    pub fn sign_cleartext_many(
        keys: &[&TestKey],
        text: &str,
        created: i64,
        hash: HashAlgorithm,
    ) -> io::Result<Vec<u8>> {
        let msg = CleartextSignedMessage::new_many(text, |normalized| {
            keys.iter()
                .map(|k| {
                    k.signature(normalized, created, hash)
                        .map_err(|e| pgp::errors::Error::from(io::Error::other(e)))
                })
                .collect()
        })
        .map_err(other)?;
        msg.to_armored_string(ArmorOptions::default())
            .map(String::into_bytes)
            .map_err(other)
    }
}
