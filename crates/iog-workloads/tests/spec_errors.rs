//! Bad job files give one-line errors that name the field and the fix.

use iog_workloads::{SpecErrorKind, parse_job_file_with, parse_job_json};

const SCENE: &str = r#"
[camera]
look_from = [0.0, 1.0, 3.0]
look_at = [0.0, 1.0, 0.0]
vfov_deg = 40.0

[materials.white]
type = "diffuse"
albedo = [0.7, 0.7, 0.7]

[[objects]]
type = "sphere"
center = [0.0, 1.0, 0.0]
radius = 0.5
material = "white"
"#;

const RENDER_JOB: &str = r#"
[job]
name = "t"
workload = "render"

[render]
scene = "scene.toml"
width = 32
height = 24
tile_size = 16
samples_per_pixel = 1
"#;

/// Parses `job` with `scene.toml` (and `bad.toml`) readable, returns the error.
fn error_of(job: &str) -> iog_workloads::SpecError {
    parse_job_file_with(job, &mut |path: &str| match path {
        "scene.toml" => Ok(SCENE.to_owned()),
        "bad.toml" => Ok(SCENE.replace("radius = 0.5", "radius = -1")),
        other => Err(format!("{other}: not found")),
    })
    .expect_err("the job is invalid")
}

/// The render job with `from` replaced by `to` (which must occur).
fn render_job(from: &str, to: &str) -> String {
    assert!(RENDER_JOB.contains(from), "{from}");
    RENDER_JOB.replacen(from, to, 1)
}

/// The render job with the scene inline, `from` replaced by `to` in the scene.
fn inline_scene_job(from: &str, to: &str) -> String {
    assert!(SCENE.contains(from), "{from}");
    let scene = SCENE
        .replacen(from, to, 1)
        .replace("[camera]", "[render.scene.camera]")
        .replace("[materials.", "[render.scene.materials.")
        .replace("[[objects]]", "[[render.scene.objects]]");
    render_job("scene = \"scene.toml\"\n", "") + &scene
}

#[test]
fn the_base_job_is_valid() {
    let spec = parse_job_file_with(RENDER_JOB, &mut |_: &str| Ok(SCENE.to_owned())).expect("valid with the scene file");
    let inline = parse_job_file_with(&inline_scene_job("radius", "radius"), &mut |_: &str| Err("no files".to_owned()))
        .expect("valid inline");
    assert_eq!(spec, inline);
}

#[test]
fn missing_field() {
    let err = error_of(&render_job("width = 32\n", ""));
    assert_eq!(err.to_string(), "missing field `width` in [render]");
    assert_eq!(err.field(), Some("render.width"));
    assert_eq!(err.kind(), SpecErrorKind::MissingField);
    let err = error_of("[noop]\nn_tasks = 1\n");
    assert_eq!(err.to_string(), "missing field `job` at the top level");
}

#[test]
fn wrong_type() {
    let err = error_of(&render_job("width = 32", "width = \"32\""));
    assert_eq!(err.to_string(), "invalid type for render.width: expected an integer, found a string");
    assert_eq!(err.field(), Some("render.width"));
    let err = error_of(&inline_scene_job("radius = 0.5", "radius = [1]"));
    assert_eq!(err.to_string(), "invalid type for render.scene.objects[0].radius: expected a number, found an array");
    let err = error_of(&render_job("width = 32", "width = -32"));
    assert_eq!(
        err.to_string(),
        "invalid value for render.width: expected an integer between 0 and 4294967295, \
         found integer -32"
    );
    let err = error_of(&inline_scene_job("center = [0.0, 1.0, 0.0]", "center = [0.0, 1.0]"));
    assert_eq!(
        err.to_string(),
        "invalid length for render.scene.objects[0].center: expected an array of length 3, \
         found 2 elements"
    );
}

#[test]
fn out_of_range() {
    let err = error_of(&render_job("tile_size = 16", "tile_size = 0"));
    assert_eq!(err.to_string(), "render.tile_size must be between 8 and 1024, got 0");
    assert_eq!(err.field(), Some("render.tile_size"));
    let err = error_of(&inline_scene_job("radius = 0.5", "radius = -1"));
    assert_eq!(err.to_string(), "render.scene.objects[0].radius must be > 0, got -1");
    let err = error_of(&render_job("name = \"t\"", "name = \"t\"\nmax_attempts = 0"));
    assert_eq!(err.to_string(), "job.max_attempts must be between 1 and 100, got 0");
    let err = error_of(&render_job("name = \"t\"", "name = \"t\"\ntask_timeout_ms = 10"));
    assert_eq!(err.to_string(), "job.task_timeout_ms must be between 1000 and 604800000, got 10");
    let err = error_of(&render_job("name = \"t\"", "name = \"\""));
    assert_eq!(err.to_string(), "job.name must be 1 to 64 characters long, got 0");
}

#[test]
fn unknown_workload() {
    let err = error_of(&render_job("workload = \"render\"", "workload = \"fold\""));
    assert_eq!(
        err.to_string(),
        "job.workload must be one of render, hash, noop, sim, nbody, wasm, process, blender, train, infer; got \"fold\""
    );
    assert_eq!(err.field(), Some("job.workload"));
}

#[test]
fn unknown_field() {
    let err = error_of(&inline_scene_job("albedo = [0.7", "colour = [0.7"));
    assert_eq!(
        err.to_string(),
        "unknown field `colour` in [render.scene.materials.white], expected one of \
         `type`, `albedo`, `fuzz`, `ior`, `color`, `strength`"
    );
    assert_eq!(err.field(), Some("render.scene.materials.white.colour"));
    let err = error_of(&inline_scene_job("type = \"diffuse\"", "type = \"diffuse\"\nfuzz = 0.1"));
    assert_eq!(
        err.to_string(),
        "unknown field `fuzz` in [render.scene.materials.white], \
         expected `type` or `albedo` (for type = \"diffuse\")"
    );
    let err = error_of(&render_job("[render]", "[rendr]"));
    assert!(err.to_string().starts_with("unknown field `rendr` at the top level, expected one of `job`"), "{err}");
    let err = error_of(&inline_scene_job("type = \"sphere\"", "type = \"cube\""));
    assert_eq!(err.to_string(), "render.scene.objects[0].type must be one of sphere, plane, triangle; got \"cube\"");
}

#[test]
fn unknown_material() {
    let err = error_of(&inline_scene_job("material = \"white\"", "material = \"blue\""));
    assert_eq!(
        err.to_string(),
        "render.scene.objects[0].material names unknown material \"blue\"; add a \
         [materials.blue] table to the scene or use a defined one (defined: white)"
    );
    assert_eq!(err.field(), Some("render.scene.objects[0].material"));
}

#[test]
fn missing_and_extra_sections() {
    let err = error_of(&render_job("workload = \"render\"", "workload = \"hash\""));
    assert_eq!(
        err.to_string(),
        "job.workload is \"hash\" but the [hash] section is missing; \
         add a [hash] section with the workload's parameters"
    );
    assert_eq!(err.kind(), SpecErrorKind::Section);
    let job = render_job("[render]", "[noop]\nn_tasks = 3\n\n[render]");
    assert_eq!(
        error_of(&job).to_string(),
        "[noop] section is present but job.workload is \"render\"; \
         remove [noop] or set job.workload = \"noop\""
    );
}

#[test]
fn scene_files() {
    let err = error_of(&render_job("scene.toml", "missing.toml"));
    assert_eq!(
        err.to_string(),
        "render.scene file \"missing.toml\" cannot be read: missing.toml: not found; \
         the path is relative to the job file's folder"
    );
    let err = error_of(&render_job("scene.toml", "bad.toml"));
    assert_eq!(err.to_string(), "in scene file \"bad.toml\": objects[0].radius must be > 0, got -1");
    assert_eq!(err.field(), Some("render.scene.objects[0].radius"));
}

#[test]
fn syntax_errors() {
    let err = error_of("[job]\nname = \n");
    assert_eq!(err.kind(), SpecErrorKind::Syntax);
    assert!(err.to_string().starts_with("invalid TOML at line 2, column 8: "), "{err}");
    let err = parse_job_json(b"{\"job\": ").expect_err("truncated");
    assert!(err.to_string().starts_with("invalid JSON at line 1, column 8: "), "{err}");
}

#[test]
fn json_needs_an_inline_scene() {
    let json = br#"{"job": {"name": "t", "workload": "render"},
        "render": {"scene": "scene.toml", "width": 8, "height": 8, "tile_size": 8,
                   "samples_per_pixel": 1}}"#;
    let err = parse_job_json(json).expect_err("path scene");
    assert!(
        err.to_string().starts_with(
            "render.scene must be inline (a table), got the path \"scene.toml\"; \
             the iog CLI inlines scene files"
        ),
        "{err}"
    );
    let err = parse_job_json(br#"{"job": {"name": "t", "workload": "noop", "x": 1}}"#).expect_err("unknown field");
    assert_eq!(
        err.to_string(),
        "unknown field `x` in [job], expected one of `name`, `workload`, `max_attempts`, `task_timeout_ms`, `sealed`"
    );
}

#[test]
fn hash_limits() {
    let job = |hash: &str| format!("[job]\nname = \"h\"\nworkload = \"hash\"\n[hash]\n{hash}");
    let base = "algorithm = \"blake3\"\ndata = \"x\"\nnonce_count = 4000000\n\
                nonces_per_task = 500000\ndifficulty_bits = 18\n";
    parse_job_file_with(&job(base), &mut |_: &str| Err(String::new())).expect("valid");
    let err = error_of(&job(&base.replace("difficulty_bits = 18", "difficulty_bits = 2")));
    assert_eq!(
        err.to_string(),
        "hash.difficulty_bits = 2 is too low for 4000000 nonces: about 1000000 would qualify, \
         at most 10000 are kept; raise it to at least 9"
    );
    let err = error_of(&job(&base.replace("\"blake3\"", "\"md5\"")));
    assert_eq!(err.to_string(), "hash.algorithm must be blake3 or sha256d; got \"md5\"");
    let err = error_of(&job(&base.replace("500000", "999")));
    assert_eq!(err.to_string(), "hash.nonces_per_task must be between 1000 and 10000000000, got 999");
    let err = error_of(&job(&format!("nonce_start = {}\n{base}", u64::MAX - 5)));
    assert_eq!(err.field(), Some("hash.nonce_count"));
}

#[test]
fn verify_policies_and_their_errors() {
    let with = |verify: &str| format!("{RENDER_JOB}\n[verify]\n{verify}\n");
    let parse =
        |text: &str| parse_job_file_with(text, &mut |_: &str| Ok(SCENE.to_owned())).map(|spec| spec.verify().unwrap());
    use iog_types::Verify;
    assert_eq!(parse(RENDER_JOB).unwrap(), Verify::None);
    assert_eq!(parse(&with("policy = \"replicate\"")).unwrap(), Verify::Replicate { replicas: 2, replicas_max: 5 });
    let three = with("policy = \"replicate\"\nreplicas = 3\nreplicas_max = 7");
    assert_eq!(parse(&three).unwrap(), Verify::Replicate { replicas: 3, replicas_max: 7 });
    assert_eq!(parse(&with("policy = \"adaptive\"")).unwrap(), Verify::Adaptive { replicas_max: 5 });

    let err = error_of(&with("policy = \"vote\""));
    assert_eq!(
        err.to_string(),
        "verify.policy must be \"none\", \"replicate\", \"adaptive\" or \"spot\", got \"vote\""
    );
    assert_eq!(parse(&with("policy = \"spot\"\nreplicas_max = 3")).unwrap(), Verify::Spot { replicas_max: 3 });
    let err = error_of(&with("policy = \"replicate\"\nreplicas = 1"));
    assert_eq!(err.to_string(), "verify.replicas must be between 2 and 9, got 1");
    assert_eq!(err.field(), Some("verify.replicas"));
    let err = error_of(&with("policy = \"replicate\"\nreplicas = 4\nreplicas_max = 3"));
    assert_eq!(err.to_string(), "verify.replicas_max must be between 4 and 9, got 3");
    let err = error_of(&with("policy = \"adaptive\"\nreplicas = 2"));
    assert!(err.to_string().starts_with("verify.replicas applies to policy \"replicate\" only"), "{err}");
    let err = error_of(&with("policy = \"none\"\nreplicas_max = 2"));
    assert!(err.to_string().contains("remove verify.replicas and verify.replicas_max"), "{err}");
    let err = error_of(&with("policy = \"replicate\"\nquorum = 2"));
    assert!(err.to_string().contains("unknown field `quorum`"), "{err}");
}

#[test]
fn sealed_specs_keep_their_workload_off_the_wire() {
    let sealed_job = RENDER_JOB.replace("workload = \"render\"\n", "workload = \"render\"\nsealed = true\n");
    let spec = parse_job_file_with(&sealed_job, &mut |_: &str| Ok(SCENE.to_owned())).expect("a sealed job file");
    assert!(spec.job.sealed && !spec.is_sealed_wire());

    // What the coordinator receives: no [render], a [sealed] section.
    let manifest = iog_types::BlobId::of(b"manifest");
    let wire = spec.to_sealed_wire(manifest, 2);
    let json = serde_json::to_vec(&wire).unwrap();
    assert!(!String::from_utf8_lossy(&json).contains("look_from"), "the scene stays home");
    let parsed = parse_job_json(&json).expect("the wire spec parses");
    assert!(parsed.is_sealed_wire() && parsed.render.is_none());
    assert_eq!(parsed.sealed.as_ref().map(|s| (s.manifest, s.n_tasks)), Some((manifest, 2)));

    // A wire spec with its workload section put back, one without
    // job.sealed, and one of no tasks are refused, naming the fix.
    let mut leaky = wire.clone();
    leaky.render = spec.render.clone();
    let err = parse_job_json(&serde_json::to_vec(&leaky).unwrap()).expect_err("leaks the scene");
    assert_eq!(err.kind(), SpecErrorKind::Section);
    assert!(err.to_string().contains("must stay with the submitter"), "{err}");
    let mut unsealed = wire.clone();
    unsealed.job.sealed = false;
    let err = parse_job_json(&serde_json::to_vec(&unsealed).unwrap()).expect_err("not sealed");
    assert!(err.to_string().contains("job.sealed is false"), "{err}");
    let err = parse_job_json(&serde_json::to_vec(&spec.to_sealed_wire(manifest, 0)).unwrap()).expect_err("empty");
    assert_eq!(err.to_string(), "sealed.n_tasks must be between 1 and 1000000, got 0");

    // Spot checks cannot read a sealed job.
    let err = error_of(&format!("{sealed_job}\n[verify]\npolicy = \"spot\"\n"));
    assert!(err.to_string().contains("cannot recompute a sample of a sealed job"), "{err}");
}
