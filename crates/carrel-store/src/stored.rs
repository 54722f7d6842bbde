//! Decoding the text columns that hold a closed set of words (roles,
//! statuses, reasons, methods) into their enums.
//!
//! A field is declared `#[sqlx(try_from = "Stored<Role>")]`: the column is
//! read as text and parsed here, in the decoder, so a word that is not one of
//! the set's reaches [`StoreError`](crate::StoreError) as the
//! [`UnknownValue`] itself ([`StoreError::InvalidStored`](crate::StoreError::InvalidStored)).
//! (Parsing in the derive's `try_from = "String"` step instead loses the
//! error's type: sqlx 0.9 boxes it as an "unprintable error" string.)

use carrel_core::roles::Role;
use carrel_core::statuses::{
    CopyStatus, FineReason, FineStatus, HoldStatus, ImportStatus, LoanStatus, OutboxState,
    PaymentMethod, UnknownValue,
};
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

/// A stored word decoded into its enum `T` (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored<T>(pub T);

impl<DB: Database, T> Type<DB> for Stored<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database, T> Decode<'r, DB> for Stored<T>
where
    String: Decode<'r, DB>,
    T: TryFrom<String, Error = UnknownValue>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let word = <String as Decode<'r, DB>>::decode(value)?;
        Ok(Stored(T::try_from(word)?))
    }
}

/// `From<Stored<T>> for T`, for the derive's `try_from`.
macro_rules! unwrap_stored {
    ($($t:ty),+ $(,)?) => {$(
        impl From<Stored<$t>> for $t {
            fn from(stored: Stored<$t>) -> Self {
                stored.0
            }
        }
    )+};
}

unwrap_stored!(
    Role,
    LoanStatus,
    HoldStatus,
    FineStatus,
    FineReason,
    PaymentMethod,
    CopyStatus,
    ImportStatus,
    OutboxState,
);
