window.Porch = window.Porch || function () { (window.Porch.q = window.Porch.q || []).push(arguments); };
