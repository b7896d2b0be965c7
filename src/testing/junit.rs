//! JUnit XML for CI systems: one `<testsuite>` per image, one `<testcase>` per test, failures with
//! their messages and diffs. Deterministic: suites and cases in declaration order, no timestamps.

use super::Outcome;

/// Escapes text for XML content and attribute values (and drops characters XML 1.0 forbids).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The report for `outcomes` (grouped by image in the order they first appear).
pub fn report(outcomes: &[Outcome]) -> String {
    let mut images: Vec<&str> = Vec::new();
    for o in outcomes {
        if !images.contains(&o.image.as_str()) {
            images.push(&o.image);
        }
    }
    let failed_total = outcomes.iter().filter(|o| !o.passed).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"himg test\" tests=\"{}\" failures=\"{failed_total}\">\n",
        outcomes.len()
    ));
    for image in images {
        let cases: Vec<&Outcome> = outcomes.iter().filter(|o| o.image == image).collect();
        let failed = cases.iter().filter(|o| !o.passed).count();
        let time: u64 = cases.iter().map(|o| o.duration_ms).sum();
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{}\">\n",
            escape(image),
            cases.len(),
            seconds(time)
        ));
        for case in cases {
            xml.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                escape(image),
                escape(&case.test),
                seconds(case.duration_ms)
            ));
            if case.passed && case.stdout.is_none() {
                xml.push_str("/>\n");
                continue;
            }
            xml.push_str(">\n");
            for f in &case.failures {
                let mut body = f.message.clone();
                if let Some(diff) = &f.diff {
                    body.push('\n');
                    body.push_str(diff);
                }
                xml.push_str(&format!(
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                    escape(&format!("{}: {}", f.check, f.message)),
                    escape(&f.check),
                    escape(&body)
                ));
            }
            if let Some(out) = case.stdout.as_deref().filter(|s| !s.is_empty()) {
                xml.push_str(&format!("      <system-out>{}</system-out>\n", escape(out)));
            }
            if let Some(err) = case.stderr.as_deref().filter(|s| !s.is_empty()) {
                xml.push_str(&format!("      <system-err>{}</system-err>\n", escape(err)));
            }
            xml.push_str("    </testcase>\n");
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Failure;

    #[test]
    fn escapes_and_groups() {
        assert_eq!(escape("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;\\u{1}");
        let o = |image: &str, test: &str, passed| Outcome {
            image: image.into(),
            test: test.into(),
            passed,
            cached: false,
            duration_ms: 1500,
            failures: if passed {
                Vec::new()
            } else {
                vec![Failure {
                    check: "stdout".into(),
                    message: "differs".into(),
                    diff: Some("-a\n+<b>\n".into()),
                }]
            },
            stdout: None,
            stderr: None,
        };
        let xml = report(&[o("a", "x", true), o("b", "y & z", false), o("a", "w", true)]);
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="himg test" tests="3" failures="1">
  <testsuite name="a" tests="2" failures="0" errors="0" skipped="0" time="3.000">
    <testcase classname="a" name="x" time="1.500"/>
    <testcase classname="a" name="w" time="1.500"/>
  </testsuite>
  <testsuite name="b" tests="1" failures="1" errors="0" skipped="0" time="1.500">
    <testcase classname="b" name="y &amp; z" time="1.500">
      <failure message="stdout: differs" type="stdout">differs
-a
+&lt;b&gt;
</failure>
    </testcase>
  </testsuite>
</testsuites>
"#;
        assert_eq!(xml, expected);
    }
}
