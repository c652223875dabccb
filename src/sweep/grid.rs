//! Sweep specifications (`a:b:n`, `a:b:n:dec`, `v1,v2,...`) and the grid
//! they span.

use crate::netlist::parse_number;

/// One point of the grid: its index and the value of each swept name.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub index: usize,
    pub values: Vec<(String, f64)>,
}

fn number(text: &str, spec: &str) -> Result<f64, String> {
    parse_number(text.trim()).ok_or_else(|| format!("'{spec}': '{text}' is not a number"))
}

/// Parse `NAME=SPEC`: a linear range `a:b:n`, a decade (log-spaced) range
/// `a:b:n:dec`, or a list `v1,v2,...`; numbers take SPICE suffixes.
pub fn parse_axis(text: &str) -> Result<(String, Vec<f64>), String> {
    let (name, spec) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}': expected NAME=SPEC"))?;
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("'{text}': empty name"));
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let values = match parts.as_slice() {
        [single] => single
            .split(',')
            .map(|v| number(v, spec))
            .collect::<Result<Vec<_>, _>>()?,
        [a, b, n] | [a, b, n, _] => {
            let (a, b) = (number(a, spec)?, number(b, spec)?);
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| format!("'{spec}': point count '{n}' is not a whole number"))?;
            if n < 2 {
                return Err(format!("'{spec}': a range needs at least 2 points"));
            }
            if parts.len() == 4 {
                if parts[3].trim() != "dec" {
                    return Err(format!("'{spec}': the fourth field must be 'dec'"));
                }
                if !(a > 0.0 && b > 0.0) {
                    return Err(format!("'{spec}': a decade range needs positive ends"));
                }
                let (la, lb) = (a.log10(), b.log10());
                (0..n)
                    .map(|k| 10f64.powf(la + (lb - la) * k as f64 / (n - 1) as f64))
                    .collect()
            } else {
                (0..n)
                    .map(|k| a + (b - a) * k as f64 / (n - 1) as f64)
                    .collect()
            }
        }
        _ => return Err(format!("'{spec}': expected a:b:n, a:b:n:dec or v1,v2,...")),
    };
    if values.is_empty() {
        return Err(format!("'{spec}': no values"));
    }
    Ok((name, values))
}

/// The cartesian product of the axes, the first axis varying slowest.
pub fn grid(axes: &[(String, Vec<f64>)]) -> Vec<Point> {
    let mut points: Vec<Vec<(String, f64)>> = vec![Vec::new()];
    for (name, values) in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                values
                    .iter()
                    .map(move |v| [p.clone(), vec![(name.clone(), *v)]].concat())
            })
            .collect();
    }
    points
        .into_iter()
        .enumerate()
        .map(|(index, values)| Point { index, values })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_to_linear_decade_and_list_values() {
        assert_eq!(parse_axis("cm=0.1n:0.3n:3").unwrap().1.len(), 3);
        let (name, v) = parse_axis("tsm1.roff=1meg:100meg:3:dec").unwrap();
        assert_eq!(name, "tsm1.roff");
        assert!((v[1] - 1e7).abs() < 1e-3, "{v:?}");
        assert_eq!(parse_axis("iin=1n,2n").unwrap().1, vec![1e-9, 2e-9]);
        assert!(parse_axis("x=1:2").is_err());
        assert!(parse_axis("x=1:2:1").is_err());
        assert!(parse_axis("x=0:2:3:dec").is_err());
        assert!(parse_axis("x=a,b").is_err());
        assert!(parse_axis("noequals").is_err());
    }

    #[test]
    fn grid_is_the_product_with_the_first_axis_slowest() {
        let g = grid(&[
            ("a".into(), vec![1.0, 2.0]),
            ("b".into(), vec![10.0, 20.0, 30.0]),
        ]);
        assert_eq!(g.len(), 6);
        assert_eq!(
            g[1].values,
            vec![("a".to_string(), 1.0), ("b".to_string(), 20.0)]
        );
        assert_eq!(g[5].index, 5);
    }
}
