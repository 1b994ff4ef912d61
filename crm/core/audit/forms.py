from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row
from django import forms


class AuditFilterForm(forms.Form):
    """The form of ``AuditEntryFilter``: a compact grid that stacks on phones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False  # the template holds the <form method="get"> and its button
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Row(
                Column("q", css_class="col-12 col-md-6 col-lg-4"),
                Column("actor", css_class="col-6 col-md-3 col-lg-2"),
                Column("action", css_class="col-6 col-md-3 col-lg-2"),
                Column("ip", css_class="col-6 col-md-3 col-lg-2"),
                Column("object_type", css_class="col-6 col-md-3 col-lg-2"),
                Column("object_id", css_class="col-6 col-md-3 col-lg-2"),
                Column("date_from", css_class="col-6 col-md-3 col-lg-2"),
                Column("date_to", css_class="col-6 col-md-3 col-lg-2"),
            ),
        )
