//! A serde `Serializer` writing block YAML straight into a `String`.
//!
//! Nothing is built in between: each value is written as serde hands it
//! over. The only look-ahead YAML needs — is this map or sequence empty,
//! and so written `{}`/`[]` on its key's line? — is answered by writing a
//! compound's opening only when its first entry arrives.

use std::fmt::{self, Display, Write as _};

use serde::ser::{self, Impossible, Serialize};

use super::scalar::{
    finish_str_in_place, indent, static_str_form, str_form, write_in_form, write_key,
    write_literal_block, StrForm,
};

/// Why a value could not be written.
#[derive(Debug)]
pub struct YamlError(String);

impl Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for YamlError {}

impl ser::Error for YamlError {
    fn custom<T: Display>(msg: T) -> Self {
        YamlError(msg.to_string())
    }
}

/// Where the value being written sits.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    /// The whole document.
    Top,
    /// After `key:` of a map whose keys sit at `level`.
    MapValue { level: usize },
    /// An item of a sequence whose dashes sit at `level`.
    SeqItem { level: usize },
}

/// Serialises one value into `out` at `slot`.
pub(super) struct Emitter<'o> {
    pub(super) out: &'o mut String,
    pub(super) slot: Slot,
}

impl<'o> Emitter<'o> {
    /// What goes before a scalar in its slot: the space after a key's
    /// colon, or an item's dash.
    fn scalar_lead_in(&mut self) {
        match self.slot {
            Slot::Top => {}
            Slot::MapValue { .. } => self.out.push(' '),
            Slot::SeqItem { level } => {
                indent(level, self.out);
                self.out.push_str("- ");
            }
        }
    }

    fn scalar(mut self, write: impl FnOnce(&mut String)) -> Result<(), YamlError> {
        self.scalar_lead_in();
        write(self.out);
        self.out.push('\n');
        Ok(())
    }

    fn display(self, value: impl Display) -> Result<(), YamlError> {
        self.scalar(|out| {
            let _ = write!(out, "{value}");
        })
    }

    fn map(self) -> MapEmitter<'o> {
        MapEmitter {
            out: self.out,
            slot: self.slot,
            started: false,
        }
    }

    fn seq(self) -> SeqEmitter<'o> {
        SeqEmitter {
            out: self.out,
            slot: self.slot,
            started: false,
        }
    }

    /// A map holding only `variant`, ready for its value.
    fn variant_key(self, variant: &'static str) -> (&'o mut String, Slot) {
        let mut map = self.map();
        map.key(variant, static_str_form(variant));
        let slot = map.value_slot();
        (map.out, slot)
    }
}

macro_rules! integer_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<(), YamlError> {
            // itoa: a mock holds a dozen integers, and `fmt` is several
            // times slower at this.
            self.scalar(|out| out.push_str(itoa::Buffer::new().format(v)))
        })*
    };
}

impl<'o> ser::Serializer for Emitter<'o> {
    type Ok = ();
    type Error = YamlError;
    type SerializeSeq = SeqEmitter<'o>;
    type SerializeTuple = SeqEmitter<'o>;
    type SerializeTupleStruct = SeqEmitter<'o>;
    type SerializeTupleVariant = SeqEmitter<'o>;
    type SerializeMap = MapEmitter<'o>;
    type SerializeStruct = MapEmitter<'o>;
    type SerializeStructVariant = MapEmitter<'o>;

    fn serialize_bool(self, v: bool) -> Result<(), YamlError> {
        self.scalar(|out| out.push_str(if v { "true" } else { "false" }))
    }

    integer_scalars!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_u128: u128,
    );

    fn serialize_f32(self, v: f32) -> Result<(), YamlError> {
        self.serialize_f64(f64::from(v))
    }

    /// As JSON spells it (shortest round-trip form); NaN and infinities,
    /// which JSON cannot hold, as null.
    fn serialize_f64(self, v: f64) -> Result<(), YamlError> {
        match serde_json::Number::from_f64(v) {
            Some(n) => self.display(n),
            None => self.serialize_unit(),
        }
    }

    fn serialize_char(self, v: char) -> Result<(), YamlError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), YamlError> {
        let form = str_form(v);
        if let (Slot::MapValue { level, .. }, StrForm::Escaped) = (self.slot, form) {
            if write_literal_block(v, level + 2, self.out) {
                return Ok(());
            }
        }
        self.scalar(|out| write_in_form(v, form, out))
    }

    /// Writes the text in place when it needs no escapes and fits one line
    /// (chrono's timestamps in test cases do), instead of collecting it
    /// into a `String` first.
    fn collect_str<T: ?Sized + Display>(mut self, value: &T) -> Result<(), YamlError> {
        let mark = self.out.len();
        self.scalar_lead_in();
        let text_start = self.out.len();
        let _ = write!(self.out, "{value}");
        if finish_str_in_place(self.out, text_start) {
            self.out.push('\n');
            return Ok(());
        }
        let text = self.out.split_off(text_start);
        self.out.truncate(mark);
        self.serialize_str(&text)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), YamlError> {
        use ser::SerializeSeq;
        let mut seq = self.seq();
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }

    fn serialize_none(self) -> Result<(), YamlError> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), YamlError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), YamlError> {
        self.scalar(|out| out.push_str("null"))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), YamlError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), YamlError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        let (out, slot) = self.variant_key(variant);
        value.serialize(Emitter { out, slot })
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<SeqEmitter<'o>, YamlError> {
        Ok(self.seq())
    }

    fn serialize_tuple(self, _len: usize) -> Result<SeqEmitter<'o>, YamlError> {
        Ok(self.seq())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<SeqEmitter<'o>, YamlError> {
        Ok(self.seq())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<SeqEmitter<'o>, YamlError> {
        let (out, slot) = self.variant_key(variant);
        Ok(Emitter { out, slot }.seq())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapEmitter<'o>, YamlError> {
        Ok(self.map())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<MapEmitter<'o>, YamlError> {
        Ok(self.map())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapEmitter<'o>, YamlError> {
        let (out, slot) = self.variant_key(variant);
        Ok(Emitter { out, slot }.map())
    }
}

/// A block mapping; its opening is written with its first key.
pub(super) struct MapEmitter<'o> {
    out: &'o mut String,
    slot: Slot,
    started: bool,
}

impl MapEmitter<'_> {
    fn key_level(&self) -> usize {
        match self.slot {
            Slot::Top => 0,
            Slot::MapValue { level, .. } | Slot::SeqItem { level } => level + 2,
        }
    }

    /// Writes `key` (in `form`, its [`str_form`]) and the colon.
    fn key(&mut self, key: &str, form: StrForm) {
        let first = !self.started;
        if first {
            self.started = true;
            match self.slot {
                Slot::Top => {}
                Slot::MapValue { .. } => self.out.push('\n'),
                // The first key shares the dash's line.
                Slot::SeqItem { level } => {
                    indent(level, self.out);
                    self.out.push_str("- ");
                }
            }
        }
        if !(first && matches!(self.slot, Slot::SeqItem { .. })) {
            indent(self.key_level(), self.out);
        }
        write_key(key, form, self.key_level(), self.out);
    }

    fn value_slot(&self) -> Slot {
        Slot::MapValue {
            level: self.key_level(),
        }
    }

    fn value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
        let slot = self.value_slot();
        value.serialize(Emitter {
            out: self.out,
            slot,
        })
    }

    fn finish(self) -> Result<(), YamlError> {
        if !self.started {
            Emitter {
                out: self.out,
                slot: self.slot,
            }
            .scalar(|out| out.push_str("{}"))?;
        }
        Ok(())
    }
}

impl ser::SerializeMap for MapEmitter<'_> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), YamlError> {
        let key = key.serialize(KeyCapture)?;
        self.key(&key, str_form(&key));
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
        self.value(value)
    }

    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapEmitter<'_> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        self.key(key, static_str_form(key));
        self.value(value)
    }

    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapEmitter<'_> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }

    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

/// A block sequence; its opening is written with its first item.
pub(super) struct SeqEmitter<'o> {
    out: &'o mut String,
    slot: Slot,
    started: bool,
}

impl SeqEmitter<'_> {
    fn item<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
        let level = match self.slot {
            Slot::Top => 0,
            // Items of a map's value sit at the key's level, as serde_yaml
            // writes them.
            Slot::MapValue { level, .. } => level,
            Slot::SeqItem { level } => level + 2,
        };
        if !self.started {
            self.started = true;
            match self.slot {
                Slot::Top => {}
                Slot::MapValue { .. } => self.out.push('\n'),
                Slot::SeqItem { level } => {
                    indent(level, self.out);
                    self.out.push_str("-\n");
                }
            }
        }
        value.serialize(Emitter {
            out: self.out,
            slot: Slot::SeqItem { level },
        })
    }

    fn finish(self) -> Result<(), YamlError> {
        if !self.started {
            Emitter {
                out: self.out,
                slot: self.slot,
            }
            .scalar(|out| out.push_str("[]"))?;
        }
        Ok(())
    }
}

macro_rules! seq_like {
    ($($trait:ident :: $method:ident),* $(,)?) => {
        $(impl ser::$trait for SeqEmitter<'_> {
            type Ok = ();
            type Error = YamlError;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
                self.item(value)
            }

            fn end(self) -> Result<(), YamlError> {
                self.finish()
            }
        })*
    };
}

seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// Takes a map key as text. Keys that are numbers, booleans or characters
/// become their text, as in JSON; anything else cannot be a key here.
struct KeyCapture;

fn not_a_key() -> YamlError {
    YamlError("a map key must be a string, number, boolean or character".into())
}

macro_rules! capture_serializer {
    ($name:ident, $refuse:ident, $($method:ident: $ty:ty => $accept:expr),* $(,)?) => {
        impl ser::Serializer for $name {
            type Ok = String;
            type Error = YamlError;
            type SerializeSeq = Impossible<String, YamlError>;
            type SerializeTuple = Impossible<String, YamlError>;
            type SerializeTupleStruct = Impossible<String, YamlError>;
            type SerializeTupleVariant = Impossible<String, YamlError>;
            type SerializeMap = Impossible<String, YamlError>;
            type SerializeStruct = Impossible<String, YamlError>;
            type SerializeStructVariant = Impossible<String, YamlError>;

            $(#[allow(clippy::redundant_closure_call)]
            fn $method(self, v: $ty) -> Result<String, YamlError> {
                ($accept)(v)
            })*

            fn serialize_f32(self, _: f32) -> Result<String, YamlError> { Err($refuse()) }
            fn serialize_f64(self, _: f64) -> Result<String, YamlError> { Err($refuse()) }
            fn serialize_bytes(self, _: &[u8]) -> Result<String, YamlError> { Err($refuse()) }
            fn serialize_none(self) -> Result<String, YamlError> { Err($refuse()) }
            fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<String, YamlError> {
                Err($refuse())
            }
            fn serialize_unit(self) -> Result<String, YamlError> { Err($refuse()) }
            fn serialize_unit_struct(self, _: &'static str) -> Result<String, YamlError> {
                Err($refuse())
            }
            fn serialize_unit_variant(
                self,
                _: &'static str,
                _: u32,
                variant: &'static str,
            ) -> Result<String, YamlError> {
                Ok(variant.to_string())
            }
            fn serialize_newtype_struct<T: ?Sized + Serialize>(
                self,
                _: &'static str,
                value: &T,
            ) -> Result<String, YamlError> {
                value.serialize(self)
            }
            fn serialize_newtype_variant<T: ?Sized + Serialize>(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: &T,
            ) -> Result<String, YamlError> {
                Err($refuse())
            }
            fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, YamlError> {
                Err($refuse())
            }
            fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, YamlError> {
                Err($refuse())
            }
            fn serialize_tuple_struct(
                self,
                _: &'static str,
                _: usize,
            ) -> Result<Self::SerializeTupleStruct, YamlError> {
                Err($refuse())
            }
            fn serialize_tuple_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self::SerializeTupleVariant, YamlError> {
                Err($refuse())
            }
            fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, YamlError> {
                Err($refuse())
            }
            fn serialize_struct(
                self,
                _: &'static str,
                _: usize,
            ) -> Result<Self::SerializeStruct, YamlError> {
                Err($refuse())
            }
            fn serialize_struct_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self::SerializeStructVariant, YamlError> {
                Err($refuse())
            }
        }
    };
}

capture_serializer!(
    KeyCapture, not_a_key,
    serialize_str: &str => |v: &str| Ok(v.to_string()),
    serialize_char: char => |v: char| Ok(v.to_string()),
    serialize_bool: bool => |v: bool| Ok(v.to_string()),
    serialize_i8: i8 => |v: i8| Ok(v.to_string()),
    serialize_i16: i16 => |v: i16| Ok(v.to_string()),
    serialize_i32: i32 => |v: i32| Ok(v.to_string()),
    serialize_i64: i64 => |v: i64| Ok(v.to_string()),
    serialize_i128: i128 => |v: i128| Ok(v.to_string()),
    serialize_u8: u8 => |v: u8| Ok(v.to_string()),
    serialize_u16: u16 => |v: u16| Ok(v.to_string()),
    serialize_u32: u32 => |v: u32| Ok(v.to_string()),
    serialize_u64: u64 => |v: u64| Ok(v.to_string()),
    serialize_u128: u128 => |v: u128| Ok(v.to_string()),
);
