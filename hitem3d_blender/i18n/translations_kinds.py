"""The Chinese (zh_HANS) entries of parts, reliefs and multicolour: the task
kinds' names and settings, their panels and operators, and their messages.

Data only; ``translations.catalogue`` adds them. Kept apart so the kinds'
strings live in one place beside the code that shows them.
"""

from __future__ import annotations

DEFAULT = "*"
OPERATOR = "Operator"

UI: dict[tuple[str, str], str] = {
    # Operators.
    (OPERATOR, "Split into Parts"): "拆分为部件",
    (DEFAULT, "Split the mesh into printable parts on Hitem3D; they arrive as separate objects"):
        "在 Hitem3D 上将网格拆分为可打印的部件，部件作为单独的物体导入",
    (OPERATOR, "Segment"): "分割",
    (DEFAULT, "Segment the mesh into its parts on Hitem3D; they arrive as separate objects"):
        "在 Hitem3D 上将网格分割为各个部分，各部分作为单独的物体导入",
    (OPERATOR, "Multicolour"): "多色",
    (DEFAULT, "Colour the mesh for multicolour printing on Hitem3D; it arrives with its colours visible"):
        "在 Hitem3D 上为网格上色以便多色打印，导入后颜色直接可见",
    (OPERATOR, "Make Relief"): "生成浮雕",
    (DEFAULT, "Make a depth map of the picture on Hitem3D; it arrives as a relief (a displaced plane)"):
        "在 Hitem3D 上生成图片的深度图，导入为浮雕（置换后的平面）",
    (DEFAULT, "Give up waiting for the result after this many seconds"): "等待结果超过此秒数后放弃",
    # Panels.
    (DEFAULT, "Parts and Colours"): "部件与颜色",
    (DEFAULT, "Relief"): "浮雕",
    # Settings.
    (DEFAULT, "Mesh"): "网格",
    (DEFAULT, "The mesh to send"): "要发送的网格",
    (DEFAULT, "The finished task selected in the Hitem3D task list"): "Hitem3D 任务列表中选中的已完成任务",
    # NOTE: words Blender's own catalogue already translates (it answers first
    # in the default context) use Blender's words, so both read the same.
    (DEFAULT, "Objects"): "物体",
    (DEFAULT, "The selected mesh objects, exported to one GLB (at most 200 MB)"):
        "所选的网格物体，导出为一个 GLB（最大 200 MB）",
    (DEFAULT, "File"): "文件",
    (DEFAULT, "A GLB, STL or OBJ file of at most 200 MB"): "不超过 200 MB 的 GLB、STL 或 OBJ 文件",
    (DEFAULT, "Mesh File"): "网格文件",
    (DEFAULT, "Character: body parts from a template; General: parts by level of detail"):
        "角色：按模板拆分身体部件；常规：按细节级别拆分",
    (DEFAULT, "Character"): "角色",
    (DEFAULT, "General"): "常规",
    (DEFAULT, "How a character is cut into parts"): "角色如何被拆分为部件",
    (DEFAULT, "A: 6 parts"): "A：6 个部件",
    (DEFAULT, "B: 5 parts"): "B：5 个部件",
    (DEFAULT, "C: 4 parts, no head"): "C：4 个部件，不含头部",
    (DEFAULT, "D: 4 parts with head"): "D：4 个部件，含头部",
    (DEFAULT, "E: 3 parts"): "E：3 个部件",
    (DEFAULT, "F: 2 parts"): "F：2 个部件",
    (DEFAULT, "The joint between printed parts"): "打印部件之间的连接方式",
    (DEFAULT, "How many parts a general split makes"): "通用拆分生成的部件数量",
    (DEFAULT, "Low"): "低",
    (DEFAULT, "Medium"): "中等",
    (DEFAULT, "High"): "高",
    (DEFAULT, "How finely the model is segmented"): "模型分割的精细程度",
    (DEFAULT, "How many colours to print with (0: as many as needed)"): "打印使用的颜色数（0：按需使用）",
    (DEFAULT, "A PNG, JPEG or WebP picture of at most 20 MB"): "不超过 20 MB 的 PNG、JPEG 或 WebP 图片",
    (DEFAULT, "A picture file on disk"): "磁盘上的图片文件",
    (DEFAULT, "An image in this file, such as a reference image or the Render Result"):
        "此文件中的图像，例如参考图像或渲染结果",
    (DEFAULT, "An image in this file (sent as PNG unless it is a PNG, JPEG or WebP file already)"):
        "此文件中的图像（若不是 PNG、JPEG 或 WebP 文件，则以 PNG 发送）",

    (DEFAULT, "Hitem3D removes the picture's background first"): "Hitem3D 先去除图片背景",
    (DEFAULT, "Height in Blender"): "Blender 中的高度",
    (DEFAULT, "How deep the relief is made in Blender (the Displace modifier's strength); it is not sent to Hitem3D"):
        "在 Blender 中生成的浮雕深度（置换修改器的强度）；不会发送给 Hitem3D",
    (DEFAULT, "Multicolour"): "多色",
}

# The joint setting is in our own context: Blender's catalogue has "None" as 无.
OWN: dict[str, str] = {
    "Joint": "连接",
    "None": "不使用",
    "Ball": "球形",
    "Dovetail": "燕尾榫",
}

# Names and settings from the kinds' table (``core.task_kinds``, marked N_),
# and the messages of the kinds.
MESSAGES: dict[str, str] = {
    "Image to 3D": "图生 3D",
    "Split into parts": "拆分为部件",
    "Segmentation": "分割",
    "Depth map / relief": "深度图／浮雕",
    "Multicolour": "多色",
    "Split": "拆分",
    "Template": "模板",
    "Joint": "连接",
    "Level": "级别",
    "Quality": "品质",
    "Remove background": "去除背景",
    "Colours": "颜色数",
    "Picture": "图片",
    "Kind: {kind}": "类型：{kind}",
    "Task: {task}": "任务：{task}",
    "no task selected": "未选择任务",
    "{count} mesh object(s) selected": "已选择 {count} 个网格物体",
    "{kind} for {source}": "{source} 的{kind}",
    "a linked model": "链接的模型",
    "Unknown task kind {kind}": "未知的任务类型 {kind}",
    "{kind} has no setting {name}": "{kind} 没有设置项 {name}",
    "{setting} must be one of {choices}, not {value}": "{setting} 必须是 {choices} 之一，而不是 {value}",
    "{setting} must be a number, not {value}": "{setting} 必须是数字，而不是 {value}",
    "{setting} must be a whole number, not {value}": "{setting} 必须是整数，而不是 {value}",
    "{setting} must be from {low} to {high}, not {value}": "{setting} 必须在 {low} 到 {high} 之间，而不是 {value}",
    "{kind} needs a picture: choose a file": "{kind}需要一张图片：请选择文件",
    "{kind} needs a mesh: choose a finished task, selected objects or a file":
        "{kind}需要一个网格：请选择已完成的任务、所选物体或文件",
    "{kind} takes one input: a file, a task or a link": "{kind}只接受一个输入：文件、任务或链接",
    "The model link must start with http": "模型链接必须以 http 开头",
    "Cannot read {name}: {reason}": "无法读取 {name}：{reason}",
    "{name} is {size}; Hitem3D accepts at most {limit} for {kind}": "{name} 为 {size}；Hitem3D 的{kind}最多接受 {limit}",
    "The source task has no finished model on Hitem3D yet": "源任务在 Hitem3D 上还没有完成的模型",
    "The task's result is {kind}, not {wanted}: generate it again with {first} output":
        "任务结果是 {kind}，而不是 {wanted}：请以 {first} 输出重新生成",
    "The downloaded result is not an STL file: retry, or check the task on Hitem3D":
        "下载的结果不是 STL 文件：请重试，或在 Hitem3D 上检查该任务",
    "The downloaded STL is incomplete: retry": "下载的 STL 不完整：请重试",
    "The downloaded depth map is not a PNG file: retry, or check the task on Hitem3D":
        "下载的深度图不是 PNG 文件：请重试，或在 Hitem3D 上检查该任务",
    "The downloaded depth map is not an EXR file: retry, or check the task on Hitem3D":
        "下载的深度图不是 EXR 文件：请重试，或在 Hitem3D 上检查该任务",
    "Blender could not import the STL: retry, or report it with the log": "Blender 无法导入该 STL：请重试，或附上日志报告问题",
    "The STL holds no objects": "该 STL 不包含任何物体",
    "The result holds no parts": "结果中没有任何部件",
    "The multicolour result has no vertex colours": "多色结果没有顶点颜色",
    "Blender could not read the depth map: retry, or report it with the log": "Blender 无法读取深度图：请重试，或附上日志报告问题",
    "The depth map is empty": "深度图为空",
    "The depth map is {width} x {height} pixels; at most {limit} a side can be used":
        "深度图为 {width} x {height} 像素；每边最多只能使用 {limit} 像素",
    "Select a finished task in the Hitem3D list first": "请先在 Hitem3D 列表中选择一个已完成的任务",
    "A depth map is not a mesh: select a task with a model": "深度图不是网格：请选择带模型的任务",
    "Choose a mesh file first": "请先选择网格文件",
    "Choose a picture first": "请先选择图片",
    # What a kind rests on that no official page or vendor client says (beside its button).
    "Unconfirmed: not on Hitem3D's published pages": "未经确认：不在 Hitem3D 公布的文档中",
    "Unconfirmed: following the task is not published; its ID is kept":
        "未经确认：跟踪此任务的方式尚未公布；任务 ID 会被保留",
    "Unconfirmed: some settings are not on Hitem3D's published pages": "未经确认：部分设置不在 Hitem3D 公布的文档中",
    # A failed task of a kind: what to try another of.
    "{kind} failed on Hitem3D (credits are refunded): retry, or try another {input}":
        "{kind}在 Hitem3D 上失败（积分已退还）：请重试，或换一个{input}",
    "image": "图像",
    "mesh": "网格",
    "picture": "图片",
}
