"""Where the course lives. Written by `make links` from [tool.attention_course] in
pyproject.toml (tools/course_links.py): edit the setting there, not this file."""

SITE_URL = 'https://self-attention-hands-on.github.io/course/'
REPOSITORY = 'https://github.com/self-attention-hands-on/course'
WHEEL_URL = 'https://self-attention-hands-on.github.io/course/_static/attention_course-0.1.0-py3-none-any.whl'
CPU_TORCH_INDEX = 'https://download.pytorch.org/whl/cpu'

INSTALL = """\
  Colab:       run  !pip install -q https://self-attention-hands-on.github.io/course/_static/attention_course-0.1.0-py3-none-any.whl
  JupyterHub:  run  %pip install -q https://self-attention-hands-on.github.io/course/_static/attention_course-0.1.0-py3-none-any.whl
  Laptop:      pip install torch --index-url https://download.pytorch.org/whl/cpu
               pip install https://self-attention-hands-on.github.io/course/_static/attention_course-0.1.0-py3-none-any.whl
  then restart the kernel (Colab: Runtime > Restart session) and run this cell again."""
