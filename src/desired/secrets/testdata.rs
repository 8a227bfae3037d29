//! Keys and files for the secrets tests. Both keys are public test keys, never used for
//! anything real.

/// doco-cd's test age key (github.com/kimdre/doco-cd, `internal/encryption/testdata/age-key.txt`);
/// its recipient is age1g3lclrkw2j0fkvq8a9jgvhglu408378tmwj84uv05qkhvax2cdrqcwqvmx.
pub const KEY: &str = "AGE-SECRET-KEY-1U2W28TTH2KSRD0K0J36U93S2C5UW4RXRYGGQ8NPGCDG7RKFCT5SQEKNGQK";

/// sops' `mockOtherIdentity` (github.com/getsops/sops, `age/keysource_test.go`).
pub const OTHER_KEY: &str =
    "AGE-SECRET-KEY-1432K5YRNSC44GC4986NXMX6GVZ52WTMT9C79CLUVWYY4DKDHD5JSNDP4MC";

/// A file written by the real sops 3.9.0, to [`KEY`]'s recipient: doco-cd's
/// `internal/encryption/testdata/encrypted.env` (commit 292c9235), byte for byte. It decrypts
/// to `THIS_IS_ENCRYPTED=yes`. The interop evidence: berth's own test encryptor is not.
pub const DOCO_CD_ENV: &str = include_str!("testdata/doco-cd-encrypted.env");
