//! The `blender` workload: renders a frame range of the submitter's
//! `.blend` file with Blender, one frame per task, on workers that offer
//! Blender (`[executors.process]` with `blender` on their PATH).
//!
//! Each task is a [`ProcessTaskInput`] running `blender --background` in
//! the process sandbox; its frame comes back as `frame-NNNNN.png`, and the
//! job's artifacts are the frames in order. Blender's log is left out of
//! the result, the image's metadata stamps (date, render time, host) are
//! turned off and the text chunks Cycles adds (its timings) are dropped,
//! so two workers with the same Blender version give the same bytes (the
//! pixels of Cycles on the CPU do not depend on the thread count) and
//! replicas compare by digest.

use serde::{Deserialize, Serialize};

use crate::code::{CodeFields, FileRef};
use crate::process::{ProcessLimits, ProcessTaskInput};
use crate::{Artifact, AssembleError, Bundle, SpecError, check};

/// The software name a worker advertises when it has Blender, and a
/// blender job requires.
pub const BLENDER_SOFTWARE: &str = "blender";
/// Most frames one job may render.
pub const BLENDER_FRAMES_MAX: u32 = 100_000;
/// Highest frame number Blender accepts.
pub const BLENDER_FRAME_MAX: u32 = 1_048_574;
/// Most samples per pixel a job may ask Cycles for.
pub const BLENDER_SAMPLES_MAX: u32 = 1 << 20;

/// The render engines a job may choose, as written in the job file and as
/// Blender names them.
const ENGINES: [(&str, &str); 3] =
    [("cycles", "CYCLES"), ("eevee", "BLENDER_EEVEE"), ("workbench", "BLENDER_WORKBENCH")];

/// Run in Blender after the scene loads: no metadata that changes from run
/// to run (date, time, render time, memory, host name) in the image.
const REPRODUCIBLE: &str = "import bpy\nr = bpy.context.scene.render\nfor a in dir(r):\n    if a.startswith('use_stamp'):\n        setattr(r, a, False)\n";

/// Parameters of the `blender` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlenderSpec {
    /// The `.blend` file, with everything it uses packed in (File › External
    /// Data › Pack Resources): a task sees this one file.
    pub scene: FileRef,
    /// The first frame to render.
    pub frame_start: u32,
    /// The last frame to render (at least `frame_start`).
    pub frame_end: u32,
    /// `cycles`, `eevee` or `workbench` (default: the scene's own). Workers
    /// render without a display, where Cycles on the CPU always works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Samples per pixel for Cycles (default: the scene's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// Memory of Blender, in MiB (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// CPU time of one frame, in seconds (default 600); Blender's threads
    /// all count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<u64>,
    /// Wall-clock limit of one frame in milliseconds (default 600000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Most one frame may write, in MiB (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mib: Option<u64>,
}

impl BlenderSpec {
    /// The limits every frame renders under.
    pub fn limits(&self) -> ProcessLimits {
        ProcessLimits::asked(self.memory_mib, self.cpu_s, self.timeout_ms, self.output_mib)
    }

    /// How many tasks (frames) the job splits into.
    pub fn n_tasks(&self) -> u64 {
        u64::from(self.frame_end.saturating_sub(self.frame_start)) + 1
    }

    /// The software a worker must offer.
    pub fn software(&self) -> Vec<String> {
        vec![crate::process::PROCESS_SOFTWARE.to_owned(), BLENDER_SOFTWARE.to_owned()]
    }

    /// The blob every task reads: the scene.
    pub fn assets(&self) -> Result<Vec<iog_types::BlobId>, SpecError> {
        Ok(vec![self.scene.resolved("blender.scene")?.1])
    }

    /// Mutable access to the file the spec names, with its field.
    pub(crate) fn file_refs_mut(&mut self) -> impl Iterator<Item = (String, &mut FileRef)> {
        std::iter::once(("blender.scene".to_owned(), &mut self.scene))
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), SpecError> {
        let fields = CodeFields {
            section: "blender",
            args: &[],
            env: &Default::default(),
            tasks: None,
            inputs: &[],
            files: std::slice::from_ref(&self.scene),
        };
        fields.validate(&[])?;
        check::between("blender.frame_start", self.frame_start, 0, BLENDER_FRAME_MAX)?;
        check::between("blender.frame_end", self.frame_end, self.frame_start, BLENDER_FRAME_MAX)?;
        if self.n_tasks() > u64::from(BLENDER_FRAMES_MAX) {
            return Err(SpecError::invalid(
                "blender.frame_end",
                format!("makes {} frames; one job renders at most {BLENDER_FRAMES_MAX}", self.n_tasks()),
            ));
        }
        if let Some(engine) = &self.engine
            && !ENGINES.iter().any(|(name, _)| name == engine)
        {
            return Err(SpecError::invalid(
                "blender.engine",
                format!("must be cycles, eevee or workbench; got {engine:?}"),
            ));
        }
        if let Some(samples) = self.samples {
            check::between("blender.samples", samples, 1, BLENDER_SAMPLES_MAX)?;
        }
        self.limits().check("blender")
    }
}

/// The name of frame `frame`'s image, in `/out` and among the artifacts.
pub fn frame_file_name(frame: u32) -> String {
    format!("frame-{frame:05}.png")
}

/// Blender's command line that renders `frame` of the scene at `/in/<scene>`.
pub fn blender_args(scene: &str, frame: u32, engine: Option<&str>, samples: Option<u32>) -> Vec<String> {
    let mut script = REPRODUCIBLE.to_owned();
    if let Some(samples) = samples {
        script.push_str(&format!("bpy.context.scene.cycles.samples = {samples}\n"));
    }
    let mut args: Vec<String> =
        ["--background", &format!("/in/{scene}"), "--python-exit-code", "1", "--python-expr", &script]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
    if let Some(engine) = engine.and_then(|engine| ENGINES.iter().find(|(name, _)| *name == engine)) {
        args.extend(["--engine".to_owned(), engine.1.to_owned()]);
    }
    // `#####` is the frame number, zero-padded: frame-00001.png.
    args.extend(
        ["--render-output", "/out/frame-#####", "--render-format", "PNG", "--use-extension", "1", "--render-frame"]
            .iter()
            .map(|arg| (*arg).to_owned()),
    );
    args.push(frame.to_string());
    args
}

pub(crate) fn plan(spec: &BlenderSpec) -> Result<Vec<ProcessTaskInput>, SpecError> {
    spec.validate()?;
    let (scene_name, scene) = spec.scene.resolved("blender.scene")?;
    let n_tasks = spec.n_tasks() as u32;
    Ok((0..n_tasks)
        .map(|task_idx| ProcessTaskInput {
            program: "blender".to_owned(),
            args: blender_args(scene_name, spec.frame_start + task_idx, spec.engine.as_deref(), spec.samples),
            env: Vec::new(),
            files: vec![(scene_name.to_owned(), scene)],
            requires: vec![BLENDER_SOFTWARE.to_owned()],
            image: None,
            gpus: 0,
            task_idx,
            n_tasks,
            limits: spec.limits(),
            stdout: false,
            strip_png_text: true,
        })
        .collect())
}

/// The frames, in order, as `frame-NNNNN.png`.
pub(crate) fn assemble(spec: &BlenderSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    let max_bytes = spec.limits().output_bytes.saturating_mul(2).max(1 << 20);
    let mut artifacts = Vec::with_capacity(outputs.len());
    for (task_idx, output) in outputs.iter().enumerate() {
        let bundle = Bundle::from_tar(output, max_bytes)
            .map_err(|err| AssembleError::BadOutput { task_idx, reason: err.to_string() })?;
        let name = frame_file_name(spec.frame_start + task_idx as u32);
        let Some(bytes) = bundle.entries.get(&format!("out/{name}")) else {
            let found: Vec<&str> = bundle.out_files().map(|(path, _)| path).collect();
            return Err(AssembleError::BadOutput {
                task_idx,
                reason: format!("Blender wrote no {name} (it wrote {found:?})"),
            });
        };
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(AssembleError::BadOutput { task_idx, reason: format!("{name} is not a PNG image") });
        }
        artifacts.push(Artifact { name, media_type: "image/png".to_owned(), bytes: bytes.clone() });
    }
    Ok(artifacts)
}

#[cfg(test)]
mod tests {
    use iog_types::BlobId;

    use super::*;

    fn spec() -> BlenderSpec {
        BlenderSpec {
            scene: FileRef::Blob { name: "shot.blend".into(), blob: BlobId([4; 32]) },
            frame_start: 3,
            frame_end: 6,
            engine: Some("cycles".into()),
            samples: Some(8),
            memory_mib: None,
            cpu_s: None,
            timeout_ms: None,
            output_mib: None,
        }
    }

    #[test]
    fn one_task_per_frame_running_blender_on_the_scene() {
        let tasks = plan(&spec()).unwrap();
        assert_eq!(tasks.len(), 4);
        let args = &tasks[1].args;
        assert_eq!(tasks[1].program, "blender");
        assert_eq!(args[1], "/in/shot.blend");
        assert_eq!(args.last().unwrap(), "4");
        assert!(args.windows(2).any(|pair| pair == ["--engine", "CYCLES"]), "{args:?}");
        assert!(args[5].contains("cycles.samples = 8"), "{args:?}");
        assert_eq!(tasks[1].files, vec![("shot.blend".into(), BlobId([4; 32]))]);
        assert!(!tasks[1].stdout);
    }

    #[test]
    fn bad_specs_name_their_field() {
        let cases: Vec<(BlenderSpec, &str)> = vec![
            (BlenderSpec { frame_end: 2, ..spec() }, "blender.frame_end"),
            (BlenderSpec { engine: Some("octane".into()), ..spec() }, "blender.engine"),
            (BlenderSpec { samples: Some(0), ..spec() }, "blender.samples"),
            (BlenderSpec { frame_start: 0, frame_end: 200_000, ..spec() }, "blender.frame_end"),
        ];
        for (spec, field) in cases {
            assert_eq!(spec.validate().unwrap_err().field(), Some(field));
        }
    }

    #[test]
    fn frames_are_the_artifacts_in_order() {
        let spec = BlenderSpec { frame_end: 4, ..spec() };
        let frame = |n: u8| {
            let mut bundle = Bundle::default();
            bundle.entries.insert(format!("out/frame-0000{}.png", 3 + n), [&b"\x89PNG\r\n\x1a\n"[..], &[n]].concat());
            bundle.to_tar()
        };
        let artifacts = assemble(&spec, &[frame(0), frame(1)]).unwrap();
        let names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["frame-00003.png", "frame-00004.png"]);
        let err = assemble(&spec, &[frame(1), frame(1)]).unwrap_err();
        assert_eq!(err.task_idx(), Some(0));
        assert!(err.to_string().contains("frame-00003.png"), "{err}");
    }
}
