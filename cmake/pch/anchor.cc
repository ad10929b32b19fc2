// Anchors the precompiled header the product and test targets reuse (cmake/podlb_pch.cmake).
