//! Specs, data sets, parsers and shards: everything that fails before a
//! model runs.

use iog_ml::{
    ACTIVATIONS_MAX, CharVocab, Dataset, InnerConfig, MlErrorKind, ModelSpec, PARAMS_MAX, Target, Task, grammar_text,
    npy_dataset, param_count, parse_csv, parse_npy, shard, spirals, waves,
};

fn spec_error(spec: &ModelSpec) -> (Option<String>, String) {
    let e = spec.validate().unwrap_err();
    assert_eq!(e.kind(), MlErrorKind::Spec);
    (e.field().map(str::to_owned), e.to_string())
}

#[test]
fn bad_specs_name_the_field() {
    let mlp = |inputs, hidden: Vec<usize>, outputs| ModelSpec::Mlp { inputs, hidden, outputs };
    assert_eq!(
        spec_error(&mlp(2, vec![8, 0], 3)),
        (Some("mlp.hidden[1]".into()), "mlp.hidden[1] must be between 1 and 65536, got 0".into())
    );
    assert_eq!(spec_error(&mlp(0, vec![], 3)).0.as_deref(), Some("mlp.inputs"));
    assert_eq!(spec_error(&mlp(2, vec![], 70_000)).0.as_deref(), Some("mlp.outputs"));
    assert_eq!(spec_error(&mlp(2, vec![1; 65], 1)).1, "mlp.hidden may list at most 64 layers, got 65");

    let lm = |vocab, context, d_model, heads, layers| ModelSpec::CharLm { vocab, context, d_model, heads, layers };
    assert_eq!(
        spec_error(&lm(28, 16, 30, 4, 2)),
        (Some("char_lm.heads".into()), "char_lm.heads must divide char_lm.d_model (30), got 4".into())
    );
    assert_eq!(spec_error(&lm(1, 16, 32, 4, 2)).0.as_deref(), Some("char_lm.vocab"));
    assert_eq!(spec_error(&lm(28, 0, 32, 4, 2)).0.as_deref(), Some("char_lm.context"));
    assert_eq!(spec_error(&lm(28, 16, 32, 0, 2)).0.as_deref(), Some("char_lm.heads"));
    assert_eq!(spec_error(&lm(28, 16, 32, 4, 0)).0.as_deref(), Some("char_lm.layers"));
    let (field, message) = spec_error(&lm(65_536, 4096, 4096, 8, 64));
    assert_eq!(field, None);
    assert!(message.contains(&format!("more than the {PARAMS_MAX} allowed")), "{message}");
    assert!(param_count(&mlp(2, vec![0], 1)).is_err());
    // Within the parameter cap, but one window's attention scores alone
    // would be 4096 heads × 4096² values: refused before any allocation.
    let (field, message) = spec_error(&lm(2, 4096, 4096, 4096, 1));
    assert_eq!(field.as_deref(), Some("char_lm.context"), "{message}");
    assert!(message.contains(&format!("more than the {ACTIVATIONS_MAX} allowed")), "{message}");
}

#[test]
fn specs_and_configs_read_from_json() {
    let spec: ModelSpec = serde_json::from_str(r#"{"kind":"mlp","inputs":2,"hidden":[32,32],"outputs":3}"#).unwrap();
    assert_eq!(spec, ModelSpec::Mlp { inputs: 2, hidden: vec![32, 32], outputs: 3 });
    let spec: ModelSpec =
        serde_json::from_str(r#"{"kind":"char_lm","vocab":28,"context":16,"d_model":32,"heads":4,"layers":2}"#)
            .unwrap();
    assert!(spec.validate().is_ok());
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), spec);
    let e = serde_json::from_str::<ModelSpec>(r#"{"kind":"mlp","inputs":2,"hiden":[3],"outputs":1}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `hiden`"), "{e}");
    let e = serde_json::from_str::<ModelSpec>(r#"{"kind":"cnn"}"#).unwrap_err();
    assert!(e.to_string().contains("unknown variant `cnn`"), "{e}");

    let cfg: InnerConfig =
        serde_json::from_str(r#"{"steps":10,"batch_size":8,"lr":0.001,"weight_decay":0.0,"seed":3}"#).unwrap();
    assert!(cfg.validate().is_ok());
    let e = InnerConfig { weight_decay: -1.0, ..cfg }.validate().unwrap_err();
    assert_eq!(e.to_string(), "weight_decay must be zero or a positive number, got -1");
    assert_eq!(InnerConfig { steps: 20_000_000, ..cfg }.validate().unwrap_err().field(), Some("steps"));
}

#[test]
fn csv_reads_numbers_with_an_optional_header() {
    let text = "# made by hand\nx1, x2 ,y\n\n1, 2, 3.5\n-4,5e-1,6\n";
    let data = parse_csv(text, Target::Values(1)).unwrap();
    assert_eq!((data.len(), data.task()), (2, Task::Regression));
    assert_eq!(data, Dataset::regression(2, vec![1.0, 2.0, -4.0, 0.5], 1, vec![3.5, 6.0]).unwrap());
    // Two target columns, no header, Windows line ends.
    let data = parse_csv("1,2,3\r\n4,5,6\r\n", Target::Values(2)).unwrap();
    assert_eq!(data, Dataset::regression(1, vec![1.0, 4.0], 2, vec![2.0, 3.0, 5.0, 6.0]).unwrap());
    let data = parse_csv("a,b,label\n0.1,0.2,0\n0.3,0.4,2\n", Target::Class).unwrap();
    assert_eq!(data, Dataset::classification(2, vec![0.1, 0.2, 0.3, 0.4], vec![0, 2]).unwrap());
}

#[test]
fn bad_csv_names_the_line_and_column() {
    let e = |text: &str, target| parse_csv(text, target).unwrap_err().to_string();
    assert_eq!(e("a,b\n1,2\n3,x\n", Target::Values(1)), r#"line 3, column 2: "x" is not a number"#);
    assert_eq!(e("1,2,3\n4,5\n", Target::Values(1)), "line 2 has 2 columns, but the first data line (line 1) has 3");
    assert_eq!(e("1,2\n3,nan\n", Target::Values(1)), r#"line 2, column 2: "nan" is not a finite number"#);
    assert_eq!(
        e("1,2\n3,1.5\n", Target::Class),
        "line 2, column 2: class label 1.5 must be a whole number from 0 to 65535"
    );
    assert_eq!(
        e("1,2\n3,-1\n", Target::Class),
        "line 2, column 2: class label -1 must be a whole number from 0 to 65535"
    );
    assert_eq!(
        e("1,2\n", Target::Values(2)),
        "line 1 has 2 columns; 2 target column(s) and at least one input column are needed"
    );
    assert_eq!(e("# nothing\nx,y\n", Target::Values(1)), "the CSV has no data lines");
    assert_eq!(e("1,2\n", Target::Values(0)), "target columns must be at least 1, got 0");
    let err = parse_csv("1,x\n", Target::Class).unwrap_err();
    assert_eq!(err.kind(), MlErrorKind::Data);
}

/// A `.npy` file as NumPy writes it: magic, version, header padded with
/// spaces to a multiple of 64 bytes and ended by a newline, then the data.
fn npy(version: u8, descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    let prefix = if version == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn npy_arrays_are_read_and_paired() {
    let xs = [1.0f32, 2.0, 3.0, 4.0, 5.0, -6.5];
    let x_bytes: Vec<u8> = xs.iter().flat_map(|v| v.to_le_bytes()).collect();
    let x = parse_npy(&npy(1, "<f4", false, "(3, 2)", &x_bytes)).unwrap();
    assert_eq!((x.shape.as_slice(), x.values.as_slice()), (&[3, 2][..], &xs[..]));
    let y_bytes: Vec<u8> = [0.5f64, 1.5, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let y = parse_npy(&npy(2, "<f8", false, "(3,)", &y_bytes)).unwrap();
    assert_eq!(y.values, [0.5, 1.5, 2.5]);
    let data = npy_dataset(&x, &y, Target::Values(1)).unwrap();
    assert_eq!(data, Dataset::regression(2, xs.to_vec(), 1, vec![0.5, 1.5, 2.5]).unwrap());
    let big_endian: Vec<u8> = [0i32, 2, 1].iter().flat_map(|v| v.to_be_bytes()).collect();
    let labels = parse_npy(&npy(1, ">i4", false, "(3,)", &big_endian)).unwrap();
    let data = npy_dataset(&x, &labels, Target::Class).unwrap();
    assert_eq!(data, Dataset::classification(2, xs.to_vec(), vec![0, 2, 1]).unwrap());
    let bytes = parse_npy(&npy(1, "|u1", false, "(2, 2)", &[1, 2, 3, 255])).unwrap();
    assert_eq!(bytes.values, [1.0, 2.0, 3.0, 255.0]);
}

#[test]
fn bad_npy_files_say_why() {
    let e = |bytes: &[u8]| parse_npy(bytes).unwrap_err().to_string();
    assert_eq!(e(b"PK\x03\x04 not numpy"), "not a usable .npy file: it does not start with the NumPy magic string");
    assert!(e(&npy(1, "<f4", true, "(2,)", &[0; 8])).contains("Fortran order"));
    assert!(e(&npy(1, "<c8", false, "(2,)", &[0; 16])).contains(r#"dtype "<c8" is not supported"#));
    // A byte order that is not one ASCII character is refused, not a panic.
    assert!(e(&npy(1, "éf4", false, "(2,)", &[0; 8])).contains(r#"dtype "éf4" is not supported"#));
    assert_eq!(
        e(&npy(1, "<f4", false, "(2, 3)", &[0; 20])),
        "not a usable .npy file: shape [2, 3] of <f4 needs 24 data bytes, the file has 20"
    );
    let x = parse_npy(&npy(1, "<f4", false, "(2, 1)", &[0; 8])).unwrap();
    let y3 = parse_npy(&npy(1, "<f4", false, "(3,)", &[0; 12])).unwrap();
    let err = npy_dataset(&x, &y3, Target::Values(1)).unwrap_err();
    assert_eq!(err.to_string(), "the input array has 2 rows but the target array has 3");
    let frac = parse_npy(&npy(1, "<f4", false, "(2,)", &[0, 0, 0, 0, 0, 0, 0xc0, 0x3f])).unwrap();
    let err = npy_dataset(&x, &frac, Target::Class).unwrap_err();
    assert_eq!(err.to_string(), "target 1: class label 1.5 must be a whole number from 0 to 65535");
    let err = npy_dataset(&y3, &y3, Target::Values(1)).unwrap_err();
    assert!(err.to_string().starts_with("the input array must have 2 dimensions"), "{err}");
}

#[test]
fn shards_cover_the_data_once() {
    for (len, n) in [(10, 3), (3, 5), (1000, 7), (0, 2), (5, 1)] {
        let ranges: Vec<_> = (0..n).map(|k| shard(len, n, k).unwrap()).collect();
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges[n - 1].end, len);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert!(pair[0].len() >= pair[1].len() && pair[0].len() - pair[1].len() <= 1);
        }
    }
    assert_eq!(shard(10, 3, 0).unwrap(), 0..4);
    assert_eq!(shard(10, 3, 2).unwrap(), 7..10);
    assert_eq!(shard(10, 0, 0).unwrap_err().to_string(), "n_shards must be at least 1, got 0");
    assert_eq!(shard(10, 3, 3).unwrap_err().to_string(), "k must be below n_shards (3), got 3");
}

#[test]
fn generated_data_is_seeded() {
    assert_eq!(spirals(90, 3, 1).unwrap(), spirals(90, 3, 1).unwrap());
    assert_ne!(spirals(90, 3, 1).unwrap(), spirals(90, 3, 2).unwrap());
    assert_eq!(spirals(10, 1, 1).unwrap_err().to_string(), "classes must be at least 2, got 1");
    assert_eq!(waves(50, 3).unwrap(), waves(50, 3).unwrap());
    assert_eq!(waves(50, 3).unwrap().task(), Task::Regression);

    let text = grammar_text(5_000, 7);
    assert!(text.len() >= 5_000);
    assert_eq!(text, grammar_text(5_000, 7));
    assert_ne!(text, grammar_text(5_000, 8));
    assert!(text.starts_with(&grammar_text(100, 7)[..50]));
    assert!(text.chars().all(|c| c.is_ascii_lowercase() || " .\n".contains(c)));
    let vocab = CharVocab::from_text(&text);
    assert_eq!(vocab.chars()[..3], ['\n', ' ', '.']);
    let tokens = vocab.encode(&text).unwrap();
    assert_eq!(vocab.decode(&tokens), text);
    assert_eq!(vocab.encode("the Cat").unwrap_err().to_string(), "character 4 ('C') is not in the vocabulary");
    let data = Dataset::text(tokens.clone(), vocab.len(), 16).unwrap();
    assert_eq!(data.len(), tokens.len() - 16);
    assert!(Dataset::text(tokens[..16].to_vec(), vocab.len(), 16).is_err());
    let e = Dataset::text(vec![0, 1, 5], 3, 1).unwrap_err();
    assert_eq!(e.to_string(), "token 2 is 5, outside a vocabulary of 3");
}

#[test]
fn data_set_constructors_check_their_shapes() {
    let e = Dataset::regression(2, vec![1.0; 5], 1, vec![0.0; 2]).unwrap_err();
    assert_eq!(e.to_string(), "the inputs hold 5 values, not a whole number of rows of 2");
    let e = Dataset::regression(2, vec![1.0; 4], 1, vec![0.0; 3]).unwrap_err();
    assert_eq!(e.to_string(), "there are 2 input rows but 3 target rows");
    let e = Dataset::classification(1, vec![1.0, f32::INFINITY], vec![0, 1]).unwrap_err();
    assert_eq!(e.to_string(), "an input of example 1 (column 0) is inf, not a finite number");
    assert!(Dataset::classification(1, vec![], vec![]).is_err());
}
