"""The Chinese (zh_HANS) interface: the catalogue, and showing messages.

Blender translates registered RNA strings by itself when it draws them:
property names and tooltips, enum items, operator and panel labels, and the
literal text of ``layout.label(text="...")``. Everything else the add-on says
is a ``core.messages.Message`` (a template and its values), translated by
``text`` where it is shown, the way Blender's own scripts call
``iface_(template).format(...)``.

NOTE: the core, the log file, the journal and the command line stay English
(pipelines parse the output, support reads the log); text is translated only
where it is shown, on the main thread (Blender translates nowhere else).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bpy

from . import translations_kinds
from ..core import models
from ..core.messages import DEFAULT_CONTEXT, OWN_CONTEXT, Message

from ..identity import ADDON_ID
LOCALE = "zh_HANS"
# Blender's translation contexts (``bpy.app.translations.contexts``): the
# default one for properties, enum items, panels, labels and every tooltip;
# "Operator" for operator labels and the text of operator buttons.
DEFAULT = DEFAULT_CONTEXT
OPERATOR = "Operator"
# Ours, for words Blender's own catalogue translates another way (see SHADOWED).
OWN = OWN_CONTEXT

# -- the catalogue ---------------------------------------------------------------------------------
# NOTE: Blender's own catalogue answers first, so for a word it already knows
# ("Cancel", "Collection") our entry is only the fallback. Product names, codes,
# URLs, file names and the platform's "Client ID" / "Client Secret" stay as they are.

UI: dict[tuple[str, str], str] = {
    # Operators: labels and tooltips.
    (OPERATOR, "Import"): "导入",
    (DEFAULT, "Import the model of one or more Hitem3D tasks into the scene when ready"):
        "在一个或多个 Hitem3D 任务就绪后，将其模型导入场景",
    (OPERATOR, "Retry"): "重试",
    (DEFAULT, "Try this task again from the start"): "从头重试此任务",
    (OPERATOR, "Import Again"): "再次导入",
    (DEFAULT, "Import this task's model into the scene again, from the Hitem3D asset library (no download)"):
        "从 Hitem3D 资产库再次将此任务的模型导入场景（无需下载）",
    (OPERATOR, "Cancel"): "取消",
    (DEFAULT, "Stop waiting for this task and delete its partial download"): "停止等待此任务，并删除未下载完的文件",
    (OPERATOR, "Remove"): "移除",
    (DEFAULT, "Remove this task from the list and its model from the Hitem3D asset library "
              "(a running task is cancelled)"):
        "从列表中移除此任务，并从 Hitem3D 资产库中删除其模型（运行中的任务会被取消）",
    (OPERATOR, "Copy Task ID"): "复制任务 ID",
    (DEFAULT, "Copy the full task ID to the clipboard"): "将完整的任务 ID 复制到剪贴板",
    (OPERATOR, "Clear Finished"): "清除已结束",
    (DEFAULT, "Remove every finished, failed or cancelled task from the list"): "从列表中移除所有已完成、失败或已取消的任务",
    (OPERATOR, "Clear Cache"): "清除缓存",
    (DEFAULT, "Delete downloaded GLB files. Tasks stay in the list and models in the Hitem3D asset library, "
              "so Import Again still works"):
        "删除已下载的 GLB 文件。任务保留在列表中，模型保留在 Hitem3D 资产库中，因此“再次导入”仍然可用",
    (OPERATOR, "Copy Diagnostics"): "复制诊断信息",
    (DEFAULT, "Copy versions, settings (without secrets) and recent problems, for a support request"):
        "复制版本、设置（不含密钥）和最近的问题，用于技术支持请求",
    (OPERATOR, "Test Connection"): "测试连接",
    (DEFAULT, "Ask Hitem3D for an access token with these credentials"): "用这些凭据向 Hitem3D 请求访问令牌",
    (OPERATOR, "Hitem3D Report"): "Hitem3D 报告",
    (DEFAULT, "Post a message to Blender's Info log (used from the timer)"): "向 Blender 的信息日志发送一条消息（由计时器使用）",
    (DEFAULT, "Info"): "信息",
    (DEFAULT, "Warning"): "警告",
    (DEFAULT, "Error"): "错误",
    (OPERATOR, "Generate"): "生成",
    (DEFAULT, "Send the image(s) to Hitem3D to generate a model; it is imported when ready"):
        "将图像发送到 Hitem3D 生成模型，模型就绪后自动导入",
    (OPERATOR, "Texture"): "生成纹理",
    (DEFAULT, "Cancel this request: before it leaves nothing is sent; during its upload Hitem3D may already have it"):
        "取消此请求：发出前取消则不发送任何内容；上传过程中取消时 Hitem3D 可能已收到它",
    (OPERATOR, "Send"): "发送",
    (DEFAULT, "Send this request kept from your last session: it spends credits, after the balance check"):
        "发送这个上次会话保留下来的请求：查询余额后发送，会花费积分",
    (DEFAULT, "Tasks at once (max)"): "同时运行的任务（上限）",
    (DEFAULT, "At most this many tasks run on your Hitem3D account at once (Hitem3D's default limit is 10); "
              "further requests wait in a queue and go as tasks end (at 10: $HITEM3D_MAX_TASKS if set)"):
        "你的 Hitem3D 账户上最多同时运行这么多任务（Hitem3D 默认上限为 10）；更多请求在队列中等待，有任务结束时再发送"
        "（为 10 时：若设置了 $HITEM3D_MAX_TASKS 则用它）",
    (DEFAULT, "Texture this geometry-only result on Hitem3D (a new task), from the image it was made from"):
        "在 Hitem3D 上用原图为这个仅几何体的结果生成纹理（新建一个任务）",
    (OPERATOR, "Refresh Balance"): "刷新余额",
    (DEFAULT, "Ask Hitem3D how many credits are left"): "向 Hitem3D 查询剩余积分",
    (DEFAULT, "Give up waiting after this many seconds"): "等待超过此秒数后放弃",
    (DEFAULT, "Give up waiting for the model after this many seconds"): "等待模型超过此秒数后放弃",
    (DEFAULT, "Hitem3D task IDs, separated by spaces, commas or new lines (empty: the IDs typed in the Hitem3D panel)"):
        "Hitem3D 任务 ID，用空格、逗号或换行分隔（留空：使用 Hitem3D 面板中输入的 ID）",
    # Panels and their literal labels.
    (DEFAULT, "Hitem3D"): "Hitem3D",
    (DEFAULT, "Import Options"): "导入选项",
    (DEFAULT, "New Generation"): "新建生成",
    (DEFAULT, "Task ID"): "任务 ID",
    (DEFAULT, "Task"): "任务",
    (DEFAULT, "One or more Hitem3D task IDs (separated by spaces, commas or new lines), "
              "or a link that contains task_id="):
        "一个或多个 Hitem3D 任务 ID（用空格、逗号或换行分隔），或包含 task_id= 的链接",
    # Import options.
    (DEFAULT, "Collection"): "集合",
    (DEFAULT, "Put imported objects in this collection, created if missing (empty: the active one)"):
        "将导入的物体放入此集合，集合不存在时自动创建（留空：活动集合）",
    (DEFAULT, "At 3D cursor"): "置于 3D 游标处",
    (DEFAULT, "Place the model at the 3D cursor instead of the world origin"): "将模型放在 3D 游标处，而不是世界原点",
    (DEFAULT, "Origin at bottom"): "原点置于底部",
    (DEFAULT, "Move each object's origin to the bottom centre of its bounds, so it stands on the floor"):
        "将每个物体的原点移到其边界框的底部中心，使模型立在地面上",
    (DEFAULT, "Scale to size"): "缩放到尺寸",
    (DEFAULT, "Scale the model so its longest side has the size below"): "缩放模型，使其最长边等于下方的尺寸",
    (DEFAULT, "Size"): "尺寸",
    (DEFAULT, "Length of the model's longest side after scaling"): "缩放后模型最长边的长度",
    (DEFAULT, "Shade smooth"): "平滑着色",
    (DEFAULT, "Smooth shading on every imported mesh"): "对每个导入的网格使用平滑着色",
    (DEFAULT, "Mark as asset"): "标记为资产",
    (DEFAULT, "Mark the model as an asset, with the task's cover as its preview"): "将模型标记为资产，并以任务封面作为预览图",
    # Add-on preferences.
    (DEFAULT, "API base URL"): "API 基础 URL",
    (DEFAULT, "Address of the Hitem3D open API (empty: $HITEM3D_API_BASE or the default)"):
        "Hitem3D 开放 API 的地址（留空：使用 $HITEM3D_API_BASE 或默认地址）",
    (DEFAULT, "Client ID"): "Client ID",
    (DEFAULT, "Access key ID from the Hitem3D platform (empty: $HITEM3D_CLIENT_ID)"):
        "Hitem3D 平台上访问密钥的 ID（留空：使用 $HITEM3D_CLIENT_ID）",
    (DEFAULT, "Client Secret"): "Client Secret",
    (DEFAULT, "Access key secret from the Hitem3D platform (empty: $HITEM3D_CLIENT_SECRET)"):
        "Hitem3D 平台上访问密钥的 Secret（留空：使用 $HITEM3D_CLIENT_SECRET）",
    (DEFAULT, "Check every"): "检查间隔",
    (DEFAULT, "Seconds between two status checks of a running task"): "两次检查运行中任务状态之间的秒数",
    (DEFAULT, "Largest download (GB)"): "最大下载大小（GB）",
    (DEFAULT, "Converters at once"): "同时转换数",
    (DEFAULT, "How many hidden Blenders may convert models at the same time; the other models wait their turn. "
              "They share one memory budget, half of this computer's memory (at most 16 GB)"):
        "可同时转换模型的隐藏 Blender 数量；其余模型排队等候。它们共享一份内存预算：本机内存的一半（最多 16 GB）",
    (DEFAULT, "Refuse result files larger than this many gigabytes (checked before anything is written)"):
        "拒绝大于此大小（GB）的结果文件（在写入任何内容之前检查）",
    (DEFAULT, "Asset library folder"): "资产库文件夹",
    (DEFAULT, "Where the Hitem3D asset library keeps one .blend per imported task (a studio share, say); "
              "empty: the extension's user folder"):
        "Hitem3D 资产库为每个导入的任务保存一个 .blend 文件的位置（例如工作室共享文件夹）；留空：扩展的用户文件夹",
    (DEFAULT, "Import when ready"): "就绪后导入",
    (DEFAULT, "Import each model as soon as it is downloaded (off: wait for a click on Import)"):
        "每个模型下载完成后立即导入（关闭：等待点击“导入”）",
    (DEFAULT, "Timeout"): "超时",
    (DEFAULT, "Seconds to wait for an answer from Hitem3D or the file host before giving up on a request"):
        "等待 Hitem3D 或文件服务器应答的秒数，超过后放弃该请求",
    (DEFAULT, "Network"): "网络",
    (DEFAULT, "How connections find their proxy"): "连接如何确定所用的代理",
    (DEFAULT, "The operating system's proxy settings and the usual *_PROXY variables"):
        "操作系统的代理设置，以及常用的 *_PROXY 环境变量",
    (DEFAULT, "Only the HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables"):
        "仅使用 HTTPS_PROXY、HTTP_PROXY 和 NO_PROXY 环境变量",
    (DEFAULT, "Always connect directly"): "始终直接连接",
    (DEFAULT, "Every connection through the proxy URL below"): "所有连接都通过下方的代理 URL",
    (DEFAULT, "Proxy URL"): "代理 URL",
    (DEFAULT, "http://host:port of the proxy (http://user:password@host:port if it asks for a password)"):
        "代理的 http://主机:端口（代理需要密码时：http://用户名:密码@主机:端口）",
    (DEFAULT, "CA bundle"): "CA 证书包",
    (DEFAULT, "A PEM file of extra certificate authorities to trust, for networks that inspect HTTPS "
              "(empty: $HITEM3D_CA_BUNDLE, or only the public authorities)"):
        "额外信任的证书颁发机构（PEM 文件），用于会检查 HTTPS 的网络（留空：使用 $HITEM3D_CA_BUNDLE，或只信任公共颁发机构）",
    # New Generation.
    (DEFAULT, "Generate from one picture"): "从一张图片生成",
    (DEFAULT, "Generate from up to four views: front (required), back, left, right"):
        "从最多四个视图生成：正面（必填）、背面、左侧、右侧",
    (DEFAULT, "Image files on disk"): "磁盘上的图像文件",
    (DEFAULT, "Images in this file, such as a reference image or the Render Result"): "此文件中的图像，例如参考图或渲染结果",
    (DEFAULT, "Image"): "图像",
    (DEFAULT, "The picture to generate from: a PNG, JPEG or WebP file of at most 20 MB"):
        "用于生成的图片：不超过 20 MB 的 PNG、JPEG 或 WebP 文件",
    (DEFAULT, "The picture to generate from: an image in this file, such as a reference image or the Render Result"):
        "用于生成的图片：此文件中的图像，例如参考图或渲染结果",
    (DEFAULT, "Front view (required): a PNG, JPEG or WebP file of at most 20 MB"):
        "正面视图（必填）：不超过 20 MB 的 PNG、JPEG 或 WebP 文件",
    (DEFAULT, "Front view (required): an image in this file, such as a reference image or the Render Result"):
        "正面视图（必填）：此文件中的图像，例如参考图或渲染结果",
    (DEFAULT, "Back view: a PNG, JPEG or WebP file of at most 20 MB"): "背面视图：不超过 20 MB 的 PNG、JPEG 或 WebP 文件",
    (DEFAULT, "Back view: an image in this file, such as a reference image or the Render Result"):
        "背面视图：此文件中的图像，例如参考图或渲染结果",
    (DEFAULT, "Left view: a PNG, JPEG or WebP file of at most 20 MB"): "左侧视图：不超过 20 MB 的 PNG、JPEG 或 WebP 文件",
    (DEFAULT, "Left view: an image in this file, such as a reference image or the Render Result"):
        "左侧视图：此文件中的图像，例如参考图或渲染结果",
    (DEFAULT, "Right view: a PNG, JPEG or WebP file of at most 20 MB"): "右侧视图：不超过 20 MB 的 PNG、JPEG 或 WebP 文件",
    (DEFAULT, "Right view: an image in this file, such as a reference image or the Render Result"):
        "右侧视图：此文件中的图像，例如参考图或渲染结果",
    (DEFAULT, "Model"): "模型",
    (DEFAULT, "Hitem3D model version"): "Hitem3D 模型版本",
    (DEFAULT, "Unconfirmed (not on Hitem3D's pages): newest general model, up to 5 million faces"):
        "未经确认（不在 Hitem3D 的文档中）：最新的通用模型，最多 500 万个面",
    (DEFAULT, "General model"): "通用模型",
    (DEFAULT, "General model; fast low resolutions"): "通用模型；低分辨率速度快",
    (DEFAULT, "First general model"): "第一代通用模型",
    (DEFAULT, "People and busts"): "人物与半身像",
    (DEFAULT, "Resolution"): "分辨率",
    (DEFAULT, "Generation resolution (the choices depend on the model)"): "生成分辨率（可选项取决于模型）",
    (DEFAULT, "Target face count (each model has its own range, checked before sending)"):
        "目标面数（每个模型有各自的范围，发送前会检查）",

    (DEFAULT, "A model with geometry and texture"): "带几何体和纹理的模型",

    (DEFAULT, "Geometry only, without texture (it can be textured later)"): "仅几何体，不带纹理（之后可以再生成纹理）",
    (DEFAULT, "PBR materials"): "PBR 材质",
    (DEFAULT, "Physically based materials (metallic, roughness) where the model supports them"):
        "基于物理的材质（金属度、糙度），在模型支持时使用",
    # Texture Selection, prices, pictures in, light removal.
    (OPERATOR, "Texture Selection"): "为所选物体生成纹理",
    (DEFAULT, "Texture the selected meshes on Hitem3D from the New Generation picture; the result is placed "
              "beside them"): "用“新建生成”中的图片在 Hitem3D 上为所选网格生成纹理；结果放在原物体旁边",
    (OPERATOR, "Generate from Picture"): "从图片生成",
    (DEFAULT, "Start a New Generation from a picture file: check the settings and the estimated cost, then "
              "generate"): "用图片文件开始新建生成：先检查设置和预计费用，再生成",
    (DEFAULT, "Generate with Hitem3D"): "用 Hitem3D 生成",
    (OPERATOR, "Generate with Hitem3D"): "用 Hitem3D 生成",
    (OPERATOR, "Use Current View"): "使用当前视图",
    (OPERATOR, "Use Camera View"): "使用摄像机视图",
    (DEFAULT, "Draw the 3D Viewport (or the scene camera) into a picture and use it as the picture to generate "
              "from"): "将 3D 视图（或场景摄像机）绘制成图片，并用作生成所用的图片",
    (DEFAULT, "View"): "视图",
    (DEFAULT, "Viewport"): "视图",
    (DEFAULT, "The 3D Viewport as you see it (without overlays)"): "你所看到的 3D 视图（不含叠加层）",
    (DEFAULT, "Camera"): "摄像机",
    (OPERATOR, "Camera"): "摄像机",
    (DEFAULT, "The scene's active camera, at the render resolution"): "场景的活动摄像机，使用渲染分辨率",
    (DEFAULT, "Lighting"): "光照",
    (DEFAULT, "Remove lighting"): "去除光照",
    (DEFAULT, "Remove the picture's lights and shadows from the texture (where the model offers it)"):
        "从纹理中去除图片里的光照和阴影（在模型提供时）",
    (DEFAULT, "Removal strength"): "去除强度",
    (DEFAULT, "How much of the picture's lighting to remove (sent as Hitem3D's shading field)"):
        "去除图片光照的程度（作为 Hitem3D 的 shading 字段发送）",
    (DEFAULT, "Show cost estimates"): "显示预计费用",
    (DEFAULT, "Show the estimated credits (from Hitem3D's dated price list) and the balance after them next to "
              "every button that spends credits"):
        "在每个会消耗积分的按钮旁显示预计积分（来自 Hitem3D 注明日期的价目表）及之后的余额",
}

# Entries in our own context (``OWN``): names of properties and enum items
# that set ``translation_context=OWN``, and messages made with ``msg_own``.
# NOTE: Blender's own catalogue answers before ours in the default context, so
# a word it already translates differently would never show our entry. These
# were found by comparing our catalogue with Blender's zh_HANS catalogue
# (``blender.mo``): SHADOWED lists them, and a test keeps them out of DEFAULT
# (another compares the whole catalogue with a blender.mo when one is at hand).
# Where Blender's own word reads well ("Medium"), ours is Blender's.
SHADOWED = frozenset({"Environment", "None", "Views", "Source", "Front", "Back", "Left", "Right", "Faces",
                      "Starting", "left", "right", "Textured"})
OWN_ENTRIES: dict[str, str] = {
    "Strength": "去除强度",  # the light removal's slider, beside its checkbox
    "Result": "结果",
    "Textured": "带纹理",
    "Untextured": "无纹理",
    # The properties in our context: their names and every item of theirs.
    "Input": "输入",
    "One Image": "单张图像",
    "File": "文件",
    "Blender Image": "Blender 图像",
    "Proxy": "代理",
    "System": "系统",
    "Custom": "自定义",
    "Environment": "环境变量",
    "None": "不使用",
    "Views": "多视图",
    "Source": "来源",
    "Front": "正面",
    "Back": "背面",
    "Left": "左侧",
    "Right": "右侧",
    "Faces": "面数",
    # Task states (``core.tasks``), one family in one context.
    "Starting": "启动中",
    "Created": "已创建",
    "Queueing": "排队中",
    "Processing": "处理中",
    "Downloading": "下载中",
    "Ready to import": "待导入",
    "Importing": "导入中",
    "Waiting": "等待中",  # an import waiting for a free converter
    "Done": "完成",
    "Failed": "失败",
    "Cancelled": "已取消",
    "Not followed": "未跟踪",
    # Views in sentences ("Generate from views front, left").
    "front": "正面",
    "back": "背面",
    "left": "左侧",
    "right": "右侧",
}

# Finished messages, exactly as the code produces them, and message templates:
# each {name} stands for a value (a host, a count, a nested message). Only
# entries with a placeholder are templates.
MESSAGES: dict[str, str] = {
    # Credentials, settings and task IDs.
    "Online access is off: enable Preferences > System > Network > Allow Online Access":
        "联网访问已关闭：请在 偏好设置 > 系统 > 网络 中勾选“允许联网访问”",
    "No Hitem3D credentials: set Client ID and Client Secret in the add-on preferences":
        "没有 Hitem3D 凭据：请在插件偏好设置中填写 Client ID 和 Client Secret",
    "Hitem3D rejected the Client ID or Client Secret: check them in the add-on preferences":
        "Hitem3D 拒绝了 Client ID 或 Client Secret：请在插件偏好设置中检查",
    "Hitem3D rejected the Client ID or Client Secret from HITEM3D_CLIENT_ID and HITEM3D_CLIENT_SECRET: check those "
    "environment variables": "Hitem3D 拒绝了来自 HITEM3D_CLIENT_ID 和 HITEM3D_CLIENT_SECRET 的 Client ID 或 Client Secret："
                             "请检查这两个环境变量",
    "Hitem3D rejected the Client ID or Client Secret: check the Client ID in the add-on preferences and "
    "HITEM3D_CLIENT_SECRET": "Hitem3D 拒绝了 Client ID 或 Client Secret：请检查插件偏好设置中的 Client ID 和 HITEM3D_CLIENT_SECRET",
    "Hitem3D rejected the Client ID or Client Secret: check HITEM3D_CLIENT_ID and the Client Secret in the add-on "
    "preferences": "Hitem3D 拒绝了 Client ID 或 Client Secret：请检查 HITEM3D_CLIENT_ID 和插件偏好设置中的 Client Secret",
    "No Hitem3D Client Secret: HITEM3D_CLIENT_ID is set, so set HITEM3D_CLIENT_SECRET too (or both in the add-on "
    "preferences)": "缺少 Hitem3D Client Secret：已设置 HITEM3D_CLIENT_ID，请同时设置 HITEM3D_CLIENT_SECRET（或在插件偏好设置中填写两者）",
    "No Hitem3D Client ID: HITEM3D_CLIENT_SECRET is set, so set HITEM3D_CLIENT_ID too (or both in the add-on "
    "preferences)": "缺少 Hitem3D Client ID：已设置 HITEM3D_CLIENT_SECRET，请同时设置 HITEM3D_CLIENT_ID（或在插件偏好设置中填写两者）",
    "{message} (API base URL from HITEM3D_API_BASE)": "{message}（API 基础 URL 来自 HITEM3D_API_BASE）",
    "Client ID in use: from HITEM3D_CLIENT_ID": "正在使用的 Client ID：来自 HITEM3D_CLIENT_ID",
    "Client Secret in use: from HITEM3D_CLIENT_SECRET": "正在使用的 Client Secret：来自 HITEM3D_CLIENT_SECRET",
    "API base URL in use: {url}, from HITEM3D_API_BASE": "正在使用的 API 基础 URL：{url}，来自 HITEM3D_API_BASE",
    "API base URL must look like {example}": "API 基础 URL 的格式应类似 {example}",
    "API base URL must use https:// (http:// only for this computer)": "API 基础 URL 必须使用 https://（http:// 仅限本机）",
    "SOCKS proxies are not supported: use an HTTP proxy URL such as http://proxy:3128":
        "不支持 SOCKS 代理：请使用 HTTP 代理 URL，例如 http://proxy:3128",
    "Proxy URL must look like http://proxy.example.com:3128": "代理 URL 的格式应类似 http://proxy.example.com:3128",
    "CA bundle file not found: {path}": "找不到 CA 证书包文件：{path}",
    "CA bundle {name} holds no PEM certificate: export the CA certificate as PEM (Base64)":
        "CA 证书包 {name} 中没有 PEM 证书：请将 CA 证书导出为 PEM（Base64）格式",
    "Unknown proxy mode {mode}: use one of {modes}": "未知的代理模式 {mode}：请使用以下之一：{modes}",
    "Proxy is set to Custom but the proxy URL is empty": "代理设为“自定义”，但代理 URL 为空",
    "Enter a Hitem3D task ID": "请输入 Hitem3D 任务 ID",
    "Not a task ID: {text} ({problem})": "不是任务 ID：{text}（{problem}）",
    "too long: {length} characters, at most {limit}": "太长：{length} 个字符，最多 {limit} 个",
    "it contains a space": "包含空格",
    "it contains a control character": "包含控制字符",
    "it contains a non-ASCII character": "包含非 ASCII 字符",
    "'{char}' is not allowed: use letters, digits, '.', '-', '_'": "不允许使用“{char}”：只能使用字母、数字、'.'、'-'、'_'",
    "too short": "太短",
    "it must start with a letter or digit": "必须以字母或数字开头",
    # Answers from Hitem3D (``core.errors``, ``core.api``).
    "{message} (code {code})": "{message}（代码 {code}）",
    "Hitem3D answered: {text} (code {code})": "Hitem3D 返回：{text}（代码 {code}）",
    "no message": "无消息",
    "Hitem3D server error: retry in a few minutes": "Hitem3D 服务器错误：请几分钟后重试",
    "Hitem3D answered: {text} (code {code}); likely cause: {cause}": "Hitem3D 返回：{text}（代码 {code}）；可能的原因：{cause}",
    "not enough credits: top up on the Hitem3D platform, then refresh the balance and try again":
        "积分不足：请在 Hitem3D 平台充值，然后刷新余额再试",
    "Send one image or views, not both": "请发送单张图像或多视图，不能同时发送",
    "Add an image to generate from": "请添加用于生成的图像",
    "Texturing needs the model to texture: choose a finished geometry-only task":
        "生成纹理需要指定模型：请选择一个已完成的仅几何体任务",
    "The mesh URL must start with http": "网格 URL 必须以 http 开头",
    "a file larger than Hitem3D takes (20 MB a picture, 200 MB a mesh): use a smaller one":
        "文件超过 Hitem3D 的上限（图片 20 MB，网格 200 MB）：请使用更小的文件",
    "a face count out of range for this model (100,000 to 2,000,000; 5,000,000 for v3.0)":
        "面数超出此模型的范围（100,000 至 2,000,000；v3.0 为 5,000,000）",
    "a resolution this model does not offer: choose one from the list": "此模型不提供该分辨率：请从列表中选择",
    "a file format Hitem3D does not take: update the extension, or report it with the code":
        "Hitem3D 不接受该文件格式：请更新扩展，或附上代码报告此问题",
    "a picture that is not PNG, JPEG or WebP: save it as PNG and try again":
        "图片不是 PNG、JPEG 或 WebP：请另存为 PNG 后重试",
    "a model version Hitem3D does not know: choose another model, or update the extension":
        "Hitem3D 不认识此模型版本：请选择其他模型，或更新扩展",
    "one picture and views sent together: update the extension, or report it with the code":
        "同时发送了单张图片和多视图：请更新扩展，或附上代码报告此问题",
    "no picture sent: add one and try again": "未发送图片：请添加一张后重试",
    "too many views: at most 4 (front, back, left, right), one picture each":
        "视图过多：最多 4 个（正面、背面、左侧、右侧），每个视图一张图片",
    "an empty file: choose another file": "文件为空：请选择其他文件",
    "no model to texture: choose a finished geometry-only task": "没有要生成纹理的模型：请选择一个已完成的仅几何体任务",
    "a model link that does not start with http: update the extension, or report it with the code":
        "模型链接不以 http 开头：请更新扩展，或附上代码报告此问题",
    "{source} must be a whole number from {low} to {high}, not {value}": "{source} 必须是 {low} 到 {high} 之间的整数，而不是 {value}",
    "Created on Hitem3D: this version cannot follow it yet; its ID is kept, retry after an update":
        "已在 Hitem3D 上创建：此版本暂时无法跟踪它；任务 ID 已保留，请在更新后重试",
    "Hitem3D does not offer {kind} at the path this version knows (HTTP 404): nothing was spent; update the "
    "extension": "Hitem3D 在此版本所知的路径上不提供{kind}（HTTP 404）：未花费任何积分；请更新扩展",
    "Unconfirmed: {model} is not on Hitem3D's published pages": "未经确认：{model} 不在 Hitem3D 公布的文档中",
    "Unconfirmed: light removal is not on Hitem3D's published pages": "未经确认：去除光照不在 Hitem3D 公布的文档中",
    "Generation failed on Hitem3D (credits are refunded): retry, or try another image":
        "Hitem3D 生成失败（积分已退还）：请重试，或换一张图像",
    "Hitem3D has no task with this ID: check the ID": "Hitem3D 没有此 ID 的任务：请检查 ID",
    "Hitem3D sent no access token: retry in a few minutes": "Hitem3D 未返回访问令牌：请几分钟后重试",
    "Hitem3D sent an unreadable task status: retry in a few minutes": "Hitem3D 返回的任务状态无法读取：请几分钟后重试",
    "Hitem3D reported an unknown task state: {state}": "Hitem3D 报告了未知的任务状态：{state}",
    "Hitem3D sent an unreadable balance: retry in a moment": "Hitem3D 返回的余额无法读取：请稍后重试",
    "The task to texture has no finished model on Hitem3D yet": "要生成纹理的任务在 Hitem3D 上还没有完成的模型",
    "Hitem3D sent no task ID: check your tasks on the Hitem3D platform before sending again":
        "Hitem3D 未返回任务 ID：再次发送前，请先在 Hitem3D 平台上检查你的任务",
    "Hitem3D sent a task ID that is not one ({problem}): check your tasks on the Hitem3D platform before sending "
    "again": "Hitem3D 返回的任务 ID 无效（{problem}）：再次发送前，请先在 Hitem3D 平台上检查你的任务",
    "Hitem3D did not accept a fresh access token: check your credentials": "Hitem3D 不接受新的访问令牌：请检查你的凭据",
    "Hitem3D refused this request (HTTP 403: {message}): check on the Hitem3D platform that your key may use it":
        "Hitem3D 拒绝了此请求（HTTP 403：{message}）：请在 Hitem3D 平台上确认你的密钥可以使用它",
    "Hitem3D is unavailable (HTTP {status}): retry in a few minutes": "Hitem3D 暂时不可用（HTTP {status}）：请几分钟后重试",
    "{host} has no Hitem3D API here (HTTP {status}): check the API base URL":
        "{host} 上没有 Hitem3D API（HTTP {status}）：请检查 API 基础 URL",
    "Hitem3D sent an unreadable answer (HTTP {status}): retry in a few minutes":
        "Hitem3D 返回的应答无法读取（HTTP {status}）：请几分钟后重试",
    # Connections (``core.network``).
    "Cannot reach {host}: the name does not resolve (DNS); check the API base URL and your internet connection":
        "无法连接 {host}：域名无法解析（DNS）；请检查 API 基础 URL 和网络连接",
    "Cannot reach {host}: connection refused; check the API base URL and port": "无法连接 {host}：连接被拒绝；请检查 API 基础 URL 和端口",
    "{host} did not answer in time: check your connection, or raise the timeout in Network settings":
        "{host} 未及时应答：请检查网络连接，或在网络设置中调高超时",
    "TLS certificate of {host} is not trusted: if your network inspects HTTPS, set its CA bundle in Network settings":
        "{host} 的 TLS 证书不受信任：如果你的网络会检查 HTTPS，请在网络设置中设置其 CA 证书包",
    "TLS certificate of {host} has expired: check this computer's date and time": "{host} 的 TLS 证书已过期：请检查本机的日期和时间",
    "TLS certificate does not match {host}: check the API base URL": "TLS 证书与 {host} 不匹配：请检查 API 基础 URL",
    "Secure connection to {host} failed (TLS): check the API base URL and the proxy settings":
        "与 {host} 的安全连接失败（TLS）：请检查 API 基础 URL 和代理设置",
    "Cannot resolve the proxy's host name: check the proxy in Network settings": "无法解析代理的主机名：请在网络设置中检查代理",
    "The proxy refused the connection: check the proxy in Network settings": "代理拒绝了连接：请在网络设置中检查代理",
    "The proxy did not answer in time: check the proxy in Network settings": "代理未及时应答：请在网络设置中检查代理",
    "The proxy asks for a password: use http://user:password@host:port as proxy URL":
        "代理要求密码：请将 http://user:password@host:port 用作代理 URL",
    "SOCKS proxies are not supported: set an HTTP proxy in Network settings": "不支持 SOCKS 代理：请在网络设置中设置 HTTP 代理",
    "The proxy could not connect to {host}: check the proxy in Network settings": "代理无法连接到 {host}：请在网络设置中检查代理",
    "Cannot reach {host}: check your internet connection, then retry": "无法连接 {host}：请检查网络连接，然后重试",
    "Connection to {host} failed: retry in a moment": "与 {host} 的连接失败：请稍后重试",
    "Connecting…": "正在连接…",
    "Connected: credentials accepted": "已连接：凭据有效",
    "Connected to {host}: credentials accepted": "已连接 {host}：凭据有效",
    "Hitem3D connection OK": "Hitem3D 连接正常",
    "No answer from Hitem3D": "Hitem3D 没有应答",
    "No answer from Hitem3D in time: retry": "Hitem3D 未及时应答：请重试",
    "No answer from Hitem3D in time: check your tasks on the Hitem3D platform before sending again":
        "Hitem3D 未及时应答：再次发送前，请先在 Hitem3D 平台上检查你的任务",
    # Waiting, downloading, importing.
    "Task {short}: {reason}": "任务 {short}：{reason}",
    "Task {short} is already running": "任务 {short} 已在运行",
    "Waiting for Hitem3D task {names}": "正在等待 Hitem3D 任务 {names}",
    "Waiting for {count} Hitem3D tasks": "正在等待 {count} 个 Hitem3D 任务",
    "Retrying ({attempt} of {limit}): {reason}": "正在重试（第 {attempt} 次，共 {limit} 次）：{reason}",
    "Task not finished after {duration}: retry to keep waiting": "任务在 {duration} 后仍未完成：重试可继续等待",
    "Unexpected error: see the Hitem3D log": "意外错误：请查看 Hitem3D 日志",
    "Unexpected error: see the Hitem3D log, then retry": "意外错误：请查看 Hitem3D 日志，然后重试",
    "Hitem3D reported success but sent no model link: retry in a few minutes": "Hitem3D 报告成功，但未返回模型链接：请几分钟后重试",
    "The task's result is {kind}, not GLB: generate it again with GLB output": "该任务的结果是 {kind}，不是 GLB：请以 GLB 输出重新生成",
    "an unknown format": "未知格式",
    "Hitem3D sent a result link that is not http(s): not downloaded": "Hitem3D 返回的结果链接不是 http(s)：未下载",
    "The downloaded result is not a GLB file: retry, or check the task on Hitem3D":
        "下载的结果不是 GLB 文件：请重试，或在 Hitem3D 上检查该任务",
    "The result is glTF version {version}; Blender imports version 2": "结果是 glTF {version} 版；Blender 只能导入第 2 版",
    "The downloaded GLB is incomplete: retry": "下载的 GLB 不完整：请重试",
    "The cover image is not a WebP, PNG or JPEG file": "封面图像不是 WebP、PNG 或 JPEG 文件",
    "The result link expired (HTTP {status}): asking for a new one": "结果链接已过期（HTTP {status}）：正在请求新链接",
    "The file host answered HTTP {status}: retry in a moment": "文件服务器返回 HTTP {status}：请稍后重试",
    "The result is {size}, over the {limit} download limit in the add-on preferences: not downloaded":
        "结果大小为 {size}，超过了插件偏好设置中 {limit} 的下载上限：未下载",
    "The result is larger than {limit}, the download limit in the add-on preferences: not downloaded":
        "结果大于插件偏好设置中的下载上限 {limit}：未下载",
    "The download from {host} stalled or was cut off: retry": "从 {host} 下载时停滞或被中断：请重试",
    "The download was cut short: retry": "下载被中断：请重试",
    "Blender could not import the GLB: retry, or report it with the log": "Blender 无法导入该 GLB：请重试，或附上日志报告问题",
    "Blender's glTF importer did not finish: retry": "Blender 的 glTF 导入器未能完成：请重试",
    "The GLB holds no objects": "该 GLB 不包含任何物体",
    "No view layer to import into": "没有可导入的视图层",
    "Unexpected error while importing: see the Hitem3D log, then retry": "导入时发生意外错误：请查看 Hitem3D 日志，然后重试",
    "Imported {count} object(s) from Hitem3D task {short}": "已从 Hitem3D 任务 {short} 导入 {count} 个物体",
    "Imported {count} object(s) from task {short}": "已从任务 {short} 导入 {count} 个物体",
    "Imported {count} object(s) from new task {short}": "已从新任务 {short} 导入 {count} 个物体",
    "Imported {count} object(s) from {tasks} task(s)": "已从 {tasks} 个任务导入 {count} 个物体",
    "Could not read the model from the Hitem3D asset library: retry": "无法从 Hitem3D 资产库读取模型：请重试",
    "The model in the Hitem3D asset library holds no objects: import it again":
        "Hitem3D 资产库中的模型不包含任何物体：请重新导入",
    "The downloaded model is gone from the cache: retry": "已下载的模型已不在缓存中：请重试",
    "Could not start Blender to convert the model ({reason}): retry, or check that Blender is installed completely":
        "无法启动 Blender 来转换模型（{reason}）：请重试，或检查 Blender 是否完整安装",
    "Blender crashed while converting the model: retry, or report it with the log":
        "Blender 在转换模型时崩溃：请重试，或附上日志报告问题",
    "The Hitem3D background process stopped unexpectedly: retry; if it happens again, report it with the log":
        "Hitem3D 后台进程意外停止：请重试；如果再次发生，请附上日志报告问题",
    "Could not start the Hitem3D background process ({reason}): retry, or check that Blender is installed "
    "completely": "无法启动 Hitem3D 后台进程（{reason}）：请重试，或检查 Blender 是否完整安装",
    "The model converter ended without a result: retry, or report it with the log":
        "模型转换程序结束但没有结果：请重试，或附上日志报告问题",
    "Could not save the converted model to the Hitem3D asset library: check the folder in the add-on "
    "preferences, then retry": "无法将转换后的模型保存到 Hitem3D 资产库：请检查插件偏好设置中的文件夹，然后重试",
    "Converting the model needed more than {limit} of memory, the converter's limit: not imported; retry, "
    "or report the task": "转换模型所需内存超过了转换程序的上限 {limit}：未导入；请重试，或报告此任务",
    "Converting the model took longer than {span}: not imported; retry": "转换模型的时间超过了 {span}：未导入；请重试",
    "Converting in a separate Blender: keep working": "正在另一个 Blender 中转换：可以继续工作",
    "Waiting for a free converter (at most {count} at once): keep working":
        "正在等待空闲的转换程序（最多同时运行 {count} 个）：可以继续工作",
    "Converting the model needed more than {limit} of memory, each converter's share: not imported; allow fewer "
    "converters at once in the add-on preferences, then retry":
        "转换模型所需内存超过了每个转换程序的份额 {limit}：未导入；请在插件偏好设置中减少同时转换数，然后重试",
    "Each converter may use up to {share} of memory ({budget} in all)": "每个转换程序最多可使用 {share} 内存（总共 {budget}）",
    "Converting task {short}: it appears when ready": "正在转换任务 {short}：完成后会出现在场景中",
    "Removed task {short} and its model in the Hitem3D asset library": "已移除任务 {short} 及其在 Hitem3D 资产库中的模型",
    "Removed task {short}": "已移除任务 {short}",
    "Deleted downloaded GLB files ({size} MB); the Hitem3D asset library keeps {count} model(s)":
        "已删除下载的 GLB 文件（{size} MB）；Hitem3D 资产库保留 {count} 个模型",
    "Cannot use the asset library folder: {reason}": "无法使用该资产库文件夹：{reason}",
    "Could not read the Hitem3D task history: starting with an empty list": "无法读取 Hitem3D 任务历史：将以空列表开始",
    "The Hitem3D task history was damaged and was set aside as {name}": "Hitem3D 任务历史已损坏，已另存为 {name}",
    # The panel and the preferences.
    "Model: {model}": "模型：{model}",
    "File: {size}": "文件：{size}",
    "Finished {when}": "结束于 {when}",
    # Elapsed time in the task list, compact.
    "{seconds}s": "{seconds}秒",
    "{minutes}m {seconds}s": "{minutes}分{seconds}秒",
    "{minutes}m": "{minutes}分",
    "{hours}h": "{hours}小时",
    "{hours}h {minutes}m": "{hours}小时{minutes}分",
    "Imported {count} object(s)": "已导入 {count} 个物体",
    "Task ID copied": "任务 ID 已复制",
    "Freed {size} MB": "已释放 {size} MB",
    "Downloaded models: {size} MB": "已下载的模型：{size} MB",
    "Diagnostics copied: paste them into your support request": "诊断信息已复制：请粘贴到你的技术支持请求中",
    # Generation (``core.submission``, ``generate``).
    "Image": "图像",
    "Front view": "正面视图",
    "Back view": "背面视图",
    "Left view": "左侧视图",
    "Right view": "右侧视图",
    "{view} (required)": "{view}（必填）",
    "{view} view": "{view}视图",
    "{label}: {name} is not a PNG, JPEG or WebP file": "{label}：{name} 不是 PNG、JPEG 或 WebP 文件",
    "{label}: file not found: {path}": "{label}：找不到文件：{path}",
    "{label}: {name} is not a file": "{label}：{name} 不是文件",
    "{label}: {name} is empty": "{label}：{name} 为空",
    "{label}: {name} is {size}; Hitem3D accepts at most 20 MB per image":
        "{label}：{name} 大小为 {size}；Hitem3D 每张图像最多接受 20 MB",
    "{label}: cannot read {name}: {reason}": "{label}：无法读取 {name}：{reason}",
    "Texture {mesh} from {source} ({model})": "用 {source} 为 {mesh} 生成纹理（{model}）",
    "{model} does not offer light removal: switch it off or choose another model":
        "{model} 不提供去除光照：请关闭此选项，或选择其他模型",
    "Light removal must be 0 to 1, not {value}": "去除光照必须在 0 到 1 之间，而不是 {value}",
    "Mesh": "网格",
    "Mesh: {name} is not a {kinds} file": "网格：{name} 不是 {kinds} 文件",
    "Mesh: file not found: {path}": "网格：找不到文件：{path}",
    "Mesh: {name} is not a file": "网格：{name} 不是文件",
    "Mesh: {name} is empty": "网格：{name} 为空",
    "Mesh: {name} is {size}; Hitem3D accepts at most 200 MB: simplify it (Decimate modifier) or send fewer objects":
        "网格：{name} 大小为 {size}；Hitem3D 最多接受 200 MB：请简化它（精简修改器）或少发送一些物体",
    "Mesh: cannot read {name}: {reason}": "网格：无法读取 {name}：{reason}",
    "Mesh: {name} is not a GLB file (no glTF header)": "网格：{name} 不是 GLB 文件（没有 glTF 文件头）",
    "Select one or more mesh objects first": "请先选择一个或多个网格物体",
    "No view layer to export from": "没有可导出的视图层",
    "{name} is hidden or not in this view layer: show it, then try again": "{name} 已隐藏或不在此视图层中：请显示它，然后重试",
    "Blender's glTF exporter did not finish: nothing was sent": "Blender 的 glTF 导出器未能完成：未发送任何内容",
    "Blender could not export the selection as GLB: see the Hitem3D log": "Blender 无法将所选内容导出为 GLB：请查看 Hitem3D 日志",
    # Prices (``core.prices``).
    "Estimated cost: unknown (not in the price list)": "预计费用：未知（不在价格表中）",
    "Estimated cost: unknown (not in the price list); balance {balance} credits": "预计费用：未知（不在价格表中）；余额 {balance} 积分",
    "Estimated cost: {credits} credits": "预计费用：{credits} 积分",
    "Estimated cost: {credits} credits; balance after: {after} credits": "预计费用：{credits} 积分；之后余额：{after} 积分",
    "Estimated cost: {low} to {high} credits": "预计费用：{low} 至 {high} 积分",
    "Estimated cost: {low} to {high} credits; balance after: {after} credits or more":
        "预计费用：{low} 至 {high} 积分；之后余额：不少于 {after} 积分",
    "Not enough credits: at least {needed} needed, {left} left ({short} missing): top up on the Hitem3D platform, then refresh the balance":
        "积分不足：至少需要 {needed}，剩余 {left}（缺少 {short}）：请在 Hitem3D 平台充值，然后刷新余额",
    "Not enough credits: at least {needed} needed, {left} left once the {count} request(s) being sent are paid ({short} missing): top up on the Hitem3D platform, then refresh the balance":
        "积分不足：至少需要 {needed}，正在发送的 {count} 个请求付费后剩余 {left}（缺少 {short}）：请在 Hitem3D 平台充值，然后刷新余额",
    "Unknown model version {model}: choose one from the list": "未知的模型版本 {model}：请从列表中选择",
    "Request type {type} is unknown: use 1 (geometry), 2 (texture a model) or 3 (geometry and texture)":
        "未知的请求类型 {type}：请使用 1（几何体）、2（为模型生成纹理）或 3（几何体和纹理）",
    "Unknown view {view}: use front, back, left and right": "未知的视图 {view}：请使用 front、back、left 和 right",
    "Views need a front view: add an image in the Front slot": "多视图需要正面视图：请在“正面”槽中添加图像",
    "{view}: no file given": "{view}：未指定文件",
    "Texturing needs a reference image: add one under New Generation": "生成纹理需要参考图像：请在“新建生成”中添加",
    "Choose a resolution for {model}": "请为 {model} 选择分辨率",
    "Resolution {resolution} is not available for {model}: choose {choices}":
        "{model} 不提供分辨率 {resolution}：请选择 {choices}",
    "{model} cannot texture an existing model: use {models}": "{model} 无法为现有模型生成纹理：请使用 {models}",
    "Only a finished geometry-only task made here with {models} can be textured":
        "只有在此处用 {models} 生成且已完成的仅几何体任务才能生成纹理",
    # Lists (``core.messages.one_of`` and ``listing``): one template per length.
    "{a} or {b}": "{a} 或 {b}",
    "{a}, {b} or {c}": "{a}、{b} 或 {c}",
    "{a}, {b}, {c} or {d}": "{a}、{b}、{c} 或 {d}",
    "{a}, {b}": "{a}、{b}",
    "{a}, {b}, {c}": "{a}、{b}、{c}",
    "{a}, {b}, {c}, {d}": "{a}、{b}、{c}、{d}",
    "Face count {face} is out of range for {model}: {low} to {high}": "面数 {face} 超出 {model} 的范围：{low} 至 {high}",
    "{model}: {low} to {high} faces": "{model}：{low} 至 {high} 个面",
    "Image '{name}' is empty: render first, or choose another image": "图像“{name}”为空：请先渲染，或选择其他图像",
    "Image '{name}' holds no picture Blender can read: choose another image": "图像“{name}”中没有 Blender 能读取的图片：请选择其他图像",
    "Image '{name}' could not be saved for sending: {reason}": "无法保存图像“{name}”以供发送：{reason}",
    "Generate from {source} ({model})": "从 {source} 生成（{model}）",
    "Texture from {source} ({model})": "从 {source} 生成纹理（{model}）",
    "views {views}": "{views}视图",
    "Submitting… {what}": "正在提交… {what}",
    "Sending to Hitem3D: {what}": "正在发送到 Hitem3D：{what}",
    "Sent to Hitem3D: task {short}": "已发送到 Hitem3D：任务 {short}",
    # The send queue (``ui.submit_calls``, ``core.send_queue``).
    "Checking the balance before sending: {what}": "发送前正在查询余额：{what}",
    "Checking the balance, then sending: {what}": "正在查询余额，随后发送：{what}",
    "Waiting for a free slot ({running} of {limit} tasks running on Hitem3D): {what}":
        "正在等待空位（Hitem3D 上有 {running}/{limit} 个任务在运行）：{what}",
    "Waiting for a free slot on Hitem3D: {what}": "正在等待 Hitem3D 上的空位：{what}",
    "Waiting: Hitem3D turned it down while {running} tasks ran (likely too many at once); it goes again when one ends: {what}":
        "等待中：Hitem3D 在 {running} 个任务运行时拒绝了它（可能同时运行的任务过多）；有任务结束后会再次发送：{what}",
    "Stopping… {what}": "正在停止… {what}",
    "Already on its way to Hitem3D: wait for the answer, or cancel it": "已在发送到 Hitem3D 的途中：请等待答复，或取消它",
    "Nothing to cancel: it was answered already": "没有可取消的内容：已收到答复",
    "Kept from your last session, not sent: {what}": "上次会话保留下来、尚未发送：{what}",
    "Nothing to send: it was sent or cancelled already": "没有可发送的内容：它已发送或已取消",
    "The kept request was not sent: {reason}": "保留的请求未发送：{reason}",
    "Cancelled before sending: nothing was sent": "已在发送前取消：未发送任何内容",
    "Stopping the upload: Hitem3D may have the request already": "正在停止上传：Hitem3D 可能已收到该请求",
    "Cancelled: Hitem3D turned the request down, nothing was spent": "已取消：Hitem3D 拒绝了该请求，未花费积分",
    "Sending stopped: if the upload had reached Hitem3D, a task was made and paid; the balance is checked again, and your tasks are on the Hitem3D platform":
        "发送已停止：如果上传已到达 Hitem3D，任务已创建并扣费；正在重新查询余额，你的任务可在 Hitem3D 平台上查看",
    "Hitem3D had made the task before the cancel reached it: task {short} is in the list":
        "取消生效前 Hitem3D 已创建该任务：任务 {short} 已在列表中",
    "The new task was removed": "新任务已被移除",
    "Balance: {credits} credits": "余额：{credits} 积分",
    "Balance: checking…": "余额：正在查询…",
    "Balance: not checked yet": "余额：尚未查询",
    "Hitem3D balance: {credits} credits": "Hitem3D 余额：{credits} 积分",
    "Select one or more mesh objects": "请选择一个或多个网格物体",
    # A mesh of the artist's own, uploaded to Hitem3D's storage (core.mesh_upload, core.api).
    "Hitem3D sent incomplete upload credentials: try again in a few minutes":
        "Hitem3D 返回的上传凭证不完整：请几分钟后重试",
    "{variable} must be an https:// address: check the environment variable":
        "{variable} 必须是 https:// 地址：请检查该环境变量",
    "{variable} must not contain a user name or password": "{variable} 不能包含用户名或密码",
    "The API base URL is not Hitem3D's ({host}): set {variable} to its storage, so your mesh is not uploaded to "
    "Hitem3D's": "API 基础 URL 不是 Hitem3D 的（{host}）：请把 {variable} 设为它的存储地址，以免您的网格被上传到 Hitem3D 的存储",
    "{variable} must use https:// (http:// only for this computer)": "{variable} 必须使用 https://（http:// 仅限本机）",
    "Uploads the selected meshes as one GLB, without their names, to Hitem3D's storage ({host}); "
    "Hitem3D reads it from {public}":
        "将所选网格作为一个 GLB（不含其名称）上传到 Hitem3D 的存储（{host}）；Hitem3D 从 {public} 读取",
    "Uploading {name} ({size}, without its object names) to Hitem3D's storage ({host}); "
    "Hitem3D reads it from {public}":
        "正在将 {name}（{size}，不含物体名称）上传到 Hitem3D 的存储（{host}）；Hitem3D 从 {public} 读取",
    "{name} would export to at least {size} ({triangles} triangles); Hitem3D accepts at most 200 MB: simplify it "
    "(Decimate modifier) or send fewer objects":
        "{name} 导出后至少为 {size}（{triangles} 个三角形）；Hitem3D 最多接受 200 MB：请简化（精简修改器）或少发送几个物体",
    # What leaves this computer (core.sending, core.picture_metadata, core.glb_names).
    "What leaves this computer: pictures go to {api} without their metadata (EXIF, GPS, text) or file names; "
    "meshes go as GLB files without object, mesh or material names, to Hitem3D's storage ({storage}) for "
    "Texture Selection and to {api} for parts and colours":
        "离开本机的内容：图片发送到 {api}，不含元数据（EXIF、GPS、文字）和文件名；网格以不含物体、网格和材质名称的 "
        "GLB 文件发送，“为所选物体生成纹理”发送到 Hitem3D 的存储（{storage}），部件与颜色发送到 {api}",
    "{label}: {name} is damaged ({what}): save it again as PNG or JPEG":
        "{label}：{name} 已损坏（{what}）：请重新另存为 PNG 或 JPEG",
    "The picture is not a PNG, JPEG or WebP file": "该图片不是 PNG、JPEG 或 WebP 文件",
    "The picture is damaged ({what}): save it again as PNG or JPEG": "图片已损坏（{what}）：请重新另存为 PNG 或 JPEG",
    "a PNG chunk runs past the end": "PNG 数据块超出文件末尾",
    "no PNG header": "缺少 PNG 文件头",
    "a JPEG segment is out of place": "JPEG 段位置错误",
    "a JPEG segment runs past the end": "JPEG 段超出文件末尾",
    "a JPEG scan has no end": "JPEG 扫描数据没有结尾",
    "a WebP header runs past the end": "WebP 文件头超出文件末尾",
    "a WebP chunk runs past the end": "WebP 数据块超出文件末尾",
    "no WebP image data": "缺少 WebP 图像数据",
    "Mesh: {name} is not a valid GLB file ({what})": "网格：{name} 不是有效的 GLB 文件（{what}）",
    "no glTF header": "缺少 glTF 文件头",
    "its header does not match its size": "文件头与文件大小不符",
    "no JSON chunk": "缺少 JSON 数据块",
    "its JSON cannot be read": "其 JSON 无法读取",
    "its JSON is not an object": "其 JSON 不是对象",
    "Hitem3D's storage refused the mesh because this computer's clock is off: set the date and time "
    "automatically, then try again (nothing was spent)":
        "Hitem3D 的存储拒绝了该网格，因为本机时钟不准：请设为自动设置日期和时间，然后重试（未花费积分）",
    "Hitem3D's storage did not let its upload credentials store the mesh under {keys} ({reason}): nothing was "
    "spent; update the extension, or report it":
        "Hitem3D 的存储不允许其上传凭证将网格保存在 {keys} 下（{reason}）：未花费任何积分；请更新扩展，或报告此问题",
    "Hitem3D's storage refused the mesh ({reason}): nothing was spent; try again in a few minutes":
        "Hitem3D 的存储拒绝了该网格（{reason}）：未花费积分；请几分钟后重试",
    "Uploading the mesh failed, nothing was spent: {reason}": "网格上传失败，未花费积分：{reason}",
    "Hitem3D gave no permission to upload the mesh ({reason}): nothing was spent; try again in a few minutes":
        "Hitem3D 未授予上传网格的权限（{reason}）：未花费积分；请几分钟后重试",
    # Pictures in (``picture_input``).
    "Only the first picture is used ({name}): for views, use Views in New Generation":
        "只使用第一张图片（{name}）：如需多视图，请在“新建生成”中使用“多视图”",
    "The viewport is the picture to generate from: press Generate": "3D 视图已设为生成所用的图片：请点击“生成”",
    "The camera view is the picture to generate from: press Generate": "摄像机视图已设为生成所用的图片：请点击“生成”",
    "The scene has no active camera: add one, or use the viewport": "场景没有活动摄像机：请添加一个，或使用 3D 视图",
    "No 3D Viewport to draw: use the camera, or run this from a 3D Viewport": "没有可绘制的 3D 视图：请使用摄像机，或在 3D 视图中运行",
    "Blender could not draw the view: {reason}": "Blender 无法绘制该视图：{reason}",
    "Blender could not draw the view: try again from the 3D Viewport": "Blender 无法绘制该视图：请在 3D 视图中重试",
    "Use Current View needs Blender's window (the view is drawn by the GPU): in background mode, render the "
    "camera and choose the Render Result as a Blender Image":
        "“使用当前视图”需要 Blender 窗口（视图由 GPU 绘制）：在后台模式下，请渲染摄像机视图，并将渲染结果选为 Blender 图像",
    # Hostile result files (core.glb_check).
    "The result file is refused: {what}. Retry, or report the task to Hitem3D":
        "结果文件被拒绝：{what}。请重试，或向 Hitem3D 报告此任务",
    "The downloaded result cannot be read: retry": "无法读取下载的结果：请重试",
    "The cover image cannot be read": "无法读取封面图像",
    "The cover image is {width} x {height} pixels, too large for a preview: skipped":
        "封面图像为 {width} x {height} 像素，作为预览太大：已跳过",
    # What a result may ask Blender to build (core.glb_check.GlbLimits).
    "The result is too large to import safely: {what}. Report the task to Hitem3D":
        "结果过大，无法安全导入：{what}。请向 Hitem3D 报告此任务",
    "a JSON part of {found}, over the limit of {limit}": "JSON 部分为 {found}，超过上限 {limit}",
    "a JSON part of {found} values, over the limit of {limit}": "JSON 部分含 {found} 个值，超过上限 {limit}",
    "{found} vertices, over the limit of {limit}": "{found} 个顶点，超过上限 {limit}",
    "{found} faces, over the limit of {limit}": "{found} 个面，超过上限 {limit}",
    "{found} of mesh data, over the limit of {limit}": "{found} 网格数据，超过上限 {limit}",
    "{found} shape keys on one mesh, over the limit of {limit}": "一个网格上有 {found} 个形态键，超过上限 {limit}",
    "{found} shape key vertices, over the limit of {limit}": "形态键共 {found} 个顶点，超过上限 {limit}",
    "{found} animation keyframes, over the limit of {limit}": "{found} 个动画关键帧，超过上限 {limit}",
    "{found} actions, over the limit of {limit}": "{found} 个动作，超过上限 {limit}",
    "{found} objects, over the limit of {limit}": "{found} 个物体，超过上限 {limit}",
    "{found} meshes, over the limit of {limit}": "{found} 个网格，超过上限 {limit}",
    "{found} materials, over the limit of {limit}": "{found} 个材质，超过上限 {limit}",
    "{found} mesh parts, over the limit of {limit}": "{found} 个网格部分，超过上限 {limit}",
    "image {index} is {width} x {height} pixels, {found} once decoded, over the limit of {limit}":
        "图像 {index} 为 {width} x {height} 像素，解码后占 {found}，超过上限 {limit}",
    "pictures of {found} once decoded, over the limit of {limit}": "图像解码后共占 {found}，超过上限 {limit}",
    "compressed data that unpacks to {found}, over the limit of {limit}": "压缩数据解压后为 {found}，超过上限 {limit}",
    "The result is compressed with meshopt, which this version of Blender cannot import: report the task to Hitem3D":
        "结果使用 meshopt 压缩，此版本的 Blender 无法导入：请向 Hitem3D 报告此任务",
    "The result needs the glTF extension {name}, which this version of Blender cannot import: report the task to "
    "Hitem3D": "结果需要 glTF 扩展 {name}，此版本的 Blender 无法导入：请向 Hitem3D 报告此任务",
    # Server text and settings (core.logs, core.settings).
    "API base URL must not contain a user name or password: remove the part before @ and set the Client ID "
    "and Secret instead": "API 基础 URL 不能包含用户名或密码：请删除 @ 之前的部分，改为设置 Client ID 和 Client Secret",
    # Files and redirects (core.safe_files, core.api).
    "Not enough disk space in {folder}: free some space and retry": "{folder} 磁盘空间不足：请释放一些空间后重试",
    "Cannot write in {folder}: it is read-only, missing or not yours; fix it, then retry":
        "无法写入 {folder}：该文件夹只读、不存在或不属于你；请修正后重试",
    "The model in the Hitem3D asset library is not the one saved here (it was changed or replaced): press Retry "
    "to download and convert it again": "Hitem3D 资产库中的模型不是这里保存的那个（已被修改或替换）：请点击“重试”重新下载并转换",
    "The server sent the request round in a redirect loop: retry later, or check the API base URL and proxy":
        "服务器的重定向形成了循环：请稍后重试，或检查 API 基础 URL 和代理",
    "The server redirected to a link that is not http(s): refused": "服务器重定向到非 http(s) 链接：已拒绝",
    # Two Blender instances, background waits (engine.ownership, engine.batch).
    "Another Blender is following the Hitem3D tasks: here they are imported, but not kept after you quit":
        "另一个 Blender 正在跟踪 Hitem3D 任务：在这里任务照常导入，但退出后不会保留",
    "No result within {duration}: the task goes on at Hitem3D; Retry waits for it again":
        "{duration} 内没有结果：任务仍在 Hitem3D 上进行；“重试”会再次等待",
}


def _model_entries() -> dict[tuple[str, str], str]:
    """Model names (kept as they are) and the resolution tooltips that
    ``generate`` builds from the model table."""
    entries = {(DEFAULT, spec.label): spec.label for spec in models.MODELS}
    for spec in models.MODELS:
        for resolution in spec.resolutions:
            entries[(DEFAULT, f"{resolution} with {spec.label}")] = f"{spec.label} 的 {resolution} 分辨率"
    return entries


def catalogue() -> dict[tuple[str, str], str]:
    """Every zh_HANS entry, keyed ``(context, English)``: what is registered."""
    entries = dict(UI)
    entries.update(_model_entries())
    entries.update({(DEFAULT, english): chinese for english, chinese in MESSAGES.items()})
    entries.update({(OWN, english): chinese for english, chinese in OWN_ENTRIES.items()})
    entries.update(translations_kinds.UI)
    entries.update({(OWN, english): chinese for english, chinese in translations_kinds.OWN.items()})
    entries.update({(DEFAULT, english): chinese for english, chinese in translations_kinds.MESSAGES.items()})
    return entries


def translations_dict() -> dict[str, dict[tuple[str, str], str]]:
    """The dictionary ``bpy.app.translations.register`` takes."""
    return {LOCALE: catalogue()}


# -- Blender ---------------------------------------------------------------------------------------

_state = {"registered": False}


def register() -> None:
    # NOTE: the stubs type the dictionary as str -> str; Blender takes
    # (context, msgid) keys, as its documentation says.
    table: Any = translations_dict()
    # NOTE: Blender refuses a name that is already registered; an enable that
    # failed half-way can leave ours behind, so it is cleared first.
    bpy.app.translations.unregister(ADDON_ID)
    bpy.app.translations.register(ADDON_ID, table)
    _state["registered"] = True


def unregister() -> None:
    if _state["registered"]:
        bpy.app.translations.unregister(ADDON_ID)
        _state["registered"] = False


def is_registered() -> bool:
    return _state["registered"]


def iface(msgid: str, context: str = DEFAULT) -> str:
    """``msgid`` in the interface language (itself when untranslated)."""
    # NOTE: getattr, as the stubs say pgettext_iface returns None; it returns the text.
    pgettext_iface: Callable[[str, str], str] = getattr(bpy.app.translations, "pgettext_iface")
    return pgettext_iface(msgid, context)


def text(message: Message) -> str:
    """``message`` in the interface language: its template looked up in its
    context, each value that is a message too; English when the interface is
    not Chinese or an entry is missing. Main thread only."""
    return message.render(iface)
