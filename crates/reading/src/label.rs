//! What people call each register: the one table of human labels that Home Assistant's entity
//! names, the dashboard's tiles and charts, and the CLI all show.

/// Register name → label, for the registers a heat meter is read for. Others get a label made
/// from their name (`heat_energy_today` → `Heat energy today`).
const LABELS: &[(&str, &str)] = &[
    ("heat_energy", "Heat energy"),
    ("cooling_energy", "Cooling energy"),
    ("volume", "Volume"),
    ("t1", "Inlet temperature"),
    ("t2", "Outlet temperature"),
    ("t3", "Temperature T3"),
    ("t1_t2", "Temperature difference"),
    ("power", "Power"),
    ("peak_power", "Peak power"),
    ("flow", "Flow"),
    ("hours", "Operating hours"),
    ("info", "Info code"),
];

/// The human label of a register name.
pub fn label(register: &str) -> String {
    if let Some((_, known)) = LABELS.iter().find(|(name, _)| *name == register) {
        return (*known).to_owned();
    }
    let spaced = register.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn known_and_made_up_labels() {
        assert_eq!(label("t1"), "Inlet temperature");
        assert_eq!(label("hours"), "Operating hours");
        assert_eq!(label("heat_energy_today"), "Heat energy today");
        assert_eq!(label("register_1001"), "Register 1001");
        assert_eq!(label(""), "Value");
    }
}
