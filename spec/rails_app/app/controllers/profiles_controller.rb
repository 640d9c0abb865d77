# frozen_string_literal: true

class ProfilesController < ApplicationController
  actions :show, :update
end
