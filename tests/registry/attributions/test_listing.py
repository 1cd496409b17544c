from recipe_engine.cli import main


def test_ls_attributions_lists_the_three(capsys):
    assert main(["ls", "attributions"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("attributions (3)")
    for name in ("saliency", "gradient_x_input", "integrated_gradients"):
        assert f"\n{name} " in out


def test_explain_integrated_gradients(capsys):
    assert main(["explain", "integrated_gradients"]) == 0
    out = capsys.readouterr().out
    assert "Sundararajan et al. 2017" in out
    assert 'nodes: int (default 10)' in out and 'method: ' in out and '(default "gauss_legendre")' in out
    assert 'baseline: ' in out and '(default "zeros")' in out
