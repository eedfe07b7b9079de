//! Context values of Cedar's extension types (`datetime`, `ip`), built once and reused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use cedar_policy::RestrictedExpression;

/// Context values of Cedar's extension types, kept: Cedar parses the function's name (`ip`,
/// `datetime`) each time it builds one, a few microseconds. The current second, and recent
/// client addresses (forgotten all at once past `ADDRESSES`).
#[derive(Default)]
pub(super) struct ExtensionValues {
    second: Mutex<Option<(u64, RestrictedExpression)>>,
    addresses: Mutex<HashMap<IpAddr, RestrictedExpression>>,
}

impl ExtensionValues {
    const ADDRESSES: usize = 4096;

    pub(super) fn time(&self, seconds: u64) -> RestrictedExpression {
        let mut second = self.second.lock().unwrap_or_else(|p| p.into_inner());
        match &*second {
            Some((at, value)) if *at == seconds => value.clone(),
            _ => {
                let millis = i64::try_from(seconds).unwrap_or(i64::MAX / 1000) * 1000;
                let value = RestrictedExpression::new_datetime(crate::time::iso8601(millis));
                *second = Some((seconds, value.clone()));
                value
            }
        }
    }

    pub(super) fn ip(&self, address: IpAddr) -> RestrictedExpression {
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(value) = addresses.get(&address) {
            return value.clone();
        }
        if addresses.len() >= Self::ADDRESSES {
            addresses.clear();
        }
        let value = RestrictedExpression::new_ip(address.to_string());
        addresses.insert(address, value.clone());
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past `ADDRESSES` client addresses, the kept values are forgotten all at once: the map
    /// never grows without bound.
    #[test]
    fn addresses_are_bounded() {
        let values = ExtensionValues::default();
        for i in 0..=ExtensionValues::ADDRESSES as u32 {
            values.ip(IpAddr::from(i.to_be_bytes()));
        }
        assert!(values.addresses.lock().unwrap().len() <= ExtensionValues::ADDRESSES);
    }
}
