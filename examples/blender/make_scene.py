"""Builds a tiny animated scene for the `blender` workload's example and
tests: a turning cube, a light and a camera, 64x48 pixels, Cycles on the
CPU with few samples, frames 1 to 4.

    blender --background --factory-startup --python make_scene.py -- cube.blend
"""
import math
import sys

import bpy

out = sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else "cube.blend"

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene

bpy.ops.mesh.primitive_cube_add(size=2.0, location=(0.0, 0.0, 0.0))
cube = bpy.context.active_object
material = bpy.data.materials.new("orange")
material.diffuse_color = (0.9, 0.4, 0.1, 1.0)
material.use_nodes = True
material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.9, 0.4, 0.1, 1.0)
cube.data.materials.append(material)
for frame, angle in ((1, 0.0), (4, 60.0)):
    cube.rotation_euler = (0.0, 0.0, math.radians(angle))
    cube.keyframe_insert(data_path="rotation_euler", frame=frame)

bpy.ops.object.light_add(type="SUN", location=(4.0, -4.0, 6.0))
bpy.context.active_object.data.energy = 4.0
bpy.ops.object.camera_add(location=(5.0, -5.0, 4.0))
camera = bpy.context.active_object
direction = -camera.location
camera.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
scene.camera = camera

world = bpy.data.worlds.new("sky")
world.color = (0.2, 0.25, 0.3)
scene.world = world

scene.frame_start, scene.frame_end = 1, 4
render = scene.render
render.engine = "CYCLES"
render.resolution_x, render.resolution_y, render.resolution_percentage = 64, 48, 100
render.image_settings.file_format = "PNG"
scene.cycles.device = "CPU"
scene.cycles.samples = 4
scene.cycles.seed = 1
scene.cycles.use_denoising = False

bpy.ops.wm.save_as_mainfile(filepath=out)
print(f"saved {out}")
