"""The deployable export moved to prunetui.core.onnx_export (ONNX, checked, or one error line; it no longer
falls back to another format); these names stay for existing imports."""

from prunetui.core.onnx_export import Exported, check_onnx, export_onnx, onnx_outputs

export_deployable = export_onnx

__all__ = ["Exported", "check_onnx", "export_deployable", "export_onnx", "onnx_outputs"]
