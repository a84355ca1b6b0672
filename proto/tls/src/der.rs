//! Just enough DER to turn a CA certificate's subject back into rcgen's `DistinguishedName`,
//! so leaves can be issued from an existing `ca.crt` without pulling in an X.509 parser.
//! The issued leaf is verified against the CA afterwards, so a subject this does not
//! reproduce byte for byte is caught there.

use rcgen::{DistinguishedName, DnType, DnValue};

/// One DER element: tag, contents, and what follows it.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("truncated element")?;
    let (&first, rest) = rest.split_first().ok_or("truncated length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("unsupported length encoding".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("element longer than its container".into());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn oid_arcs(bytes: &[u8]) -> Result<Vec<u64>, String> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        value = value
            .checked_mul(128)
            .ok_or("object identifier arc too large")?
            | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == bytes.len() {
            return Err("truncated object identifier".into());
        }
    }
    if arcs.is_empty() {
        return Err("empty object identifier".into());
    }
    Ok(arcs)
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "attribute value is not valid text".to_string())
}

fn value(tag: u8, bytes: &[u8]) -> Result<DnValue, String> {
    let invalid = |e: rcgen::Error| format!("invalid attribute value: {e}");
    Ok(match tag {
        0x0c => DnValue::Utf8String(text(bytes)?),
        0x13 => DnValue::PrintableString(text(bytes)?.try_into().map_err(invalid)?),
        0x16 => DnValue::Ia5String(text(bytes)?.try_into().map_err(invalid)?),
        0x14 => DnValue::TeletexString(text(bytes)?.try_into().map_err(invalid)?),
        other => {
            return Err(format!(
                "unsupported attribute string type (tag {other:#04x})"
            ))
        }
    })
}

/// Parses an X.509 `Name` (with or without its outer SEQUENCE header, as webpki's trust
/// anchors keep it) into a `DistinguishedName`. Multi-valued RDNs are not supported.
pub(crate) fn distinguished_name(name: &[u8]) -> Result<DistinguishedName, String> {
    let mut rdns = match element(name) {
        Ok((0x30, contents, [])) => contents,
        _ => name,
    };
    let mut dn = DistinguishedName::new();
    while !rdns.is_empty() {
        let (tag, set, rest) = element(rdns)?;
        rdns = rest;
        if tag != 0x31 {
            return Err(format!("expected a SET in the name, found tag {tag:#04x}"));
        }
        let (tag, attribute, extra) = element(set)?;
        if tag != 0x30 || !extra.is_empty() {
            return Err("multi-valued or malformed name component".into());
        }
        let (tag, oid, attribute) = element(attribute)?;
        if tag != 0x06 {
            return Err("name component without an object identifier".into());
        }
        let (tag, v, extra) = element(attribute)?;
        if !extra.is_empty() {
            return Err("malformed name component".into());
        }
        dn.push(DnType::from_oid(&oid_arcs(oid)?), value(tag, v)?);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_rcgen_writes() -> Result<(), Box<dyn std::error::Error>> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "ha cluster CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "example");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key)?;
        let anchor = webpki::anchor_from_trusted_cert(cert.der())?;
        let dn = distinguished_name(anchor.subject.as_ref())?;
        assert_eq!(dn, params.distinguished_name);
        Ok(())
    }

    #[test]
    fn rejects_garbage() {
        assert!(distinguished_name(&[0x31, 0x05, 0x30]).is_err());
        assert!(distinguished_name(&[0x04, 0x00]).is_err());
        assert!(oid_arcs(&[0x2a, 0x86]).is_err());
    }

    #[test]
    fn decodes_object_identifiers() -> Result<(), String> {
        // 2.5.4.3 (commonName), 1.2.840.113549
        assert_eq!(oid_arcs(&[0x55, 0x04, 0x03])?, vec![2, 5, 4, 3]);
        assert_eq!(
            oid_arcs(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d])?,
            vec![1, 2, 840, 113549]
        );
        Ok(())
    }
}
