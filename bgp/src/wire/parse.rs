//! The few `nom` helpers the codec shares. `nom` stays inside `wire`: its
//! results are turned into typed errors before they leave a function.

/// A parser result with no error detail: each caller knows what failed.
pub(crate) type Res<'a, T> = nom::IResult<&'a [u8], T, ()>;

/// Run `parser` on `input`, which it must consume exactly.
pub(crate) fn all<'a, T>(
    input: &'a [u8],
    mut parser: impl FnMut(&'a [u8]) -> Res<'a, T>,
) -> Option<T> {
    match parser(input) {
        Ok(([], value)) => Some(value),
        _ => None,
    }
}
