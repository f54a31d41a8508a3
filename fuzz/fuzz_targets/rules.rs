//! Rule files and alert templates as the ruler loads them: the YAML, the
//! checks `promtool check rules` makes, template parsing, and templates
//! expanded over an alert's data. Must return Ok or Err, never panic or
//! overflow the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_analytics::rules::{RuleFile, Template, TemplateData};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = RuleFile::parse(s);
    if let Ok(t) = Template::parse(s) {
        let data = TemplateData {
            labels: [("instance".to_string(), "db-1:5432".to_string())].into(),
            value: 0.25,
            ..TemplateData::default()
        };
        let _ = t.expand(&data);
    }
});
