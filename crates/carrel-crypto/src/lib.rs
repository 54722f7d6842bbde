//! Carrel key material and token primitives.
