//! The event representation: an enum variant's *name* is the event type and
//! only its *content* is the payload (ADR 0003).
//!
//! Serde's externally tagged form would write `{"Deposited": {"amount": "5"}}`;
//! a store already records the type next to the data, so we split the two
//! without building an intermediate `serde_json::Value`: [`Split`] is a
//! serializer that accepts exactly one enum variant and writes its content
//! with `serde_json`, and [`Joined`] is a deserializer that presents
//! `(event_type, data)` to a derived `Deserialize` as that same variant.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, EnumAccess, VariantAccess, Visitor};
use serde::ser::{self, Impossible, Serialize};

type JsonError = serde_json::Error;

/// Serializes one enum variant into `(variant name, content as JSON)`. With
/// `capture_data == false` it only finds the name.
pub(crate) struct Split {
    pub(crate) capture_data: bool,
}

fn not_a_variant(what: &str) -> JsonError {
    <JsonError as ser::Error>::custom(format!(
        "a domain event must serialize as an externally tagged enum variant (the \
         variant name is the event type; no `#[serde(tag = ..)]` or \
         `#[serde(untagged)]`), but this one serialized as {what}"
    ))
}

macro_rules! reject {
    ($($method:ident($($ty:ty),*) => $what:literal;)*) => {
        $(
            fn $method(self $(, _: $ty)*) -> Result<Self::Ok, Self::Error> {
                Err(not_a_variant($what))
            }
        )*
    };
}

/// Content size most events fit in without reallocating.
const TYPICAL_EVENT_BYTES: usize = 96;

impl ser::Serializer for Split {
    type Ok = (&'static str, Vec<u8>);
    type Error = JsonError;
    type SerializeSeq = Impossible<Self::Ok, JsonError>;
    type SerializeTuple = Impossible<Self::Ok, JsonError>;
    type SerializeTupleStruct = Impossible<Self::Ok, JsonError>;
    type SerializeTupleVariant = SeqVariant;
    type SerializeMap = Impossible<Self::Ok, JsonError>;
    type SerializeStruct = Impossible<Self::Ok, JsonError>;
    type SerializeStructVariant = StructVariant;

    reject! {
        serialize_bool(bool) => "a bool";
        serialize_i8(i8) => "an integer";
        serialize_i16(i16) => "an integer";
        serialize_i32(i32) => "an integer";
        serialize_i64(i64) => "an integer";
        serialize_i128(i128) => "an integer";
        serialize_u8(u8) => "an integer";
        serialize_u16(u16) => "an integer";
        serialize_u32(u32) => "an integer";
        serialize_u64(u64) => "an integer";
        serialize_u128(u128) => "an integer";
        serialize_f32(f32) => "a float";
        serialize_f64(f64) => "a float";
        serialize_char(char) => "a char";
        serialize_str(&str) => "a string";
        serialize_bytes(&[u8]) => "bytes";
        serialize_none() => "None";
        serialize_unit() => "()";
        serialize_unit_struct(&'static str) => "a unit struct";
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, JsonError> {
        Err(not_a_variant("Some(..)"))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, JsonError> {
        // An empty object rather than `null`, so that a later schema version
        // that adds fields can be reached by an upcaster that inserts them.
        let data = if self.capture_data {
            b"{}".to_vec()
        } else {
            Vec::new()
        };
        Ok((variant, data))
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Self::Ok, JsonError> {
        // A transparent wrapper around the event enum.
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Self::Ok, JsonError> {
        let data = if self.capture_data {
            let mut buf = Vec::with_capacity(TYPICAL_EVENT_BYTES);
            serde_json::to_writer(&mut buf, value)?;
            buf
        } else {
            Vec::new()
        };
        Ok((variant, data))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, JsonError> {
        Err(not_a_variant("a sequence"))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, JsonError> {
        Err(not_a_variant("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, JsonError> {
        Err(not_a_variant("a tuple struct"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, JsonError> {
        Ok(SeqVariant(Writer::new(variant, b'[', self.capture_data)))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, JsonError> {
        Err(not_a_variant("a map"))
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, JsonError> {
        Err(not_a_variant("a struct"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, JsonError> {
        Ok(StructVariant(Writer::new(variant, b'{', self.capture_data)))
    }
}

/// Writes a JSON array or object element by element.
pub(crate) struct Writer {
    variant: &'static str,
    buf: Vec<u8>,
    first: bool,
    capture: bool,
}

impl Writer {
    fn new(variant: &'static str, open: u8, capture: bool) -> Self {
        let mut buf = Vec::new();
        if capture {
            buf.reserve(TYPICAL_EVENT_BYTES);
            buf.push(open);
        }
        Writer {
            variant,
            buf,
            first: true,
            capture,
        }
    }

    fn separator(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    fn finish(mut self, close: u8) -> (&'static str, Vec<u8>) {
        if self.capture {
            self.buf.push(close);
        }
        (self.variant, self.buf)
    }
}

/// The content of a tuple variant, as a JSON array.
pub(crate) struct SeqVariant(Writer);

impl ser::SerializeTupleVariant for SeqVariant {
    type Ok = (&'static str, Vec<u8>);
    type Error = JsonError;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), JsonError> {
        if self.0.capture {
            self.0.separator();
            serde_json::to_writer(&mut self.0.buf, value)?;
        }
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, JsonError> {
        Ok(self.0.finish(b']'))
    }
}

/// The content of a struct variant, as a JSON object.
pub(crate) struct StructVariant(Writer);

impl ser::SerializeStructVariant for StructVariant {
    type Ok = (&'static str, Vec<u8>);
    type Error = JsonError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        if self.0.capture {
            self.0.separator();
            serde_json::to_writer(&mut self.0.buf, key)?;
            self.0.buf.push(b':');
            serde_json::to_writer(&mut self.0.buf, value)?;
        }
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, JsonError> {
        Ok(self.0.finish(b'}'))
    }
}

/// Presents `(event_type, data)` as the enum variant `event_type` whose
/// content is the JSON `data`.
pub(crate) struct Joined<'de> {
    pub(crate) event_type: &'de str,
    pub(crate) data: &'de [u8],
}

impl<'de> de::Deserializer<'de> for Joined<'de> {
    type Error = JsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> EnumAccess<'de> for Joined<'de> {
    type Error = JsonError;
    type Variant = Content<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), JsonError> {
        let name = BorrowedStrDeserializer::<JsonError>::new(self.event_type);
        let value = seed.deserialize(name)?;
        Ok((value, Content(self.data)))
    }
}

/// A variant's JSON content.
pub(crate) struct Content<'de>(&'de [u8]);

impl<'de> Content<'de> {
    fn read<T>(
        self,
        f: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
        ) -> Result<T, JsonError>,
    ) -> Result<T, JsonError> {
        let mut de = serde_json::Deserializer::from_slice(self.0);
        let value = f(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

impl<'de> VariantAccess<'de> for Content<'de> {
    type Error = JsonError;

    fn unit_variant(self) -> Result<(), JsonError> {
        // Whatever the content is (`{}` when we wrote it), a unit variant has
        // nothing to read.
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, JsonError> {
        self.read(|de| seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, JsonError> {
        self.read(|de| de::Deserializer::deserialize_tuple(de, len, visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.read(|de| de::Deserializer::deserialize_struct(de, "", fields, visitor))
    }
}
